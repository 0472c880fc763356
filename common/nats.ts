import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import { headers } from '@nats-io/nats-core';
import { natsAuth, type NatsRole } from './nats-auth';
import { BUILD_STREAM, BUILD_SUBJECTS, BuildEvent, LOG_STREAM_HEADER, subjects, type LogStreamName } from '../schemas/messages';

const NANOS_PER_SECOND = 1_000_000_000;

/**
 * Connects as `role` (common/nats-auth.ts; the CLI and tests as the operator, workers as
 * workers), with the credentials of the dev stack in `home` (default CAUSEWAY_HOME) unless
 * the environment names others.
 */
export async function connectNats(url: string, name: string, auth: { role?: NatsRole; home?: string } = {}): Promise<NatsConnection> {
  try {
    return await connect({ servers: url, name, maxReconnectAttempts: -1, reconnectTimeWait: 500, ...natsAuth(auth.role ?? 'operator', auth.home) });
  } catch (err) {
    throw new Error(`cannot reach NATS at ${url}: ${(err as Error).message}. Start the stack with \`causeway dev up\` or set NATS_URL.`);
  }
}

/** Creates or updates the stream that holds every build's logs and events. */
export async function ensureBuildStream(nc: NatsConnection, maxAgeSeconds: number): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const config = {
    name: BUILD_STREAM,
    subjects: [BUILD_SUBJECTS],
    max_age: maxAgeSeconds * NANOS_PER_SECOND,
    // Long enough that a step re-publishing after a worker crash is de-duplicated.
    duplicate_window: 10 * 60 * NANOS_PER_SECOND,
  };
  try {
    await jsm.streams.info(BUILD_STREAM);
    await jsm.streams.update(BUILD_STREAM, config);
  } catch (err) {
    if (!/stream not found/i.test((err as Error).message)) throw err;
    await jsm.streams.add(config);
  }
}

/** How long an event publish may wait for JetStream before the live view gives up on it. */
const EVENT_TIMEOUT_MS = 2000;

/** One message of a log on `subject` (a step's or a service's), its stream (stdout, stderr, causeway) in a header. */
export async function publishLog(js: JetStreamClient, subject: string, stream: LogStreamName, data: Uint8Array, msgId: string): Promise<void> {
  const h = headers();
  h.set(LOG_STREAM_HEADER, stream);
  await js.publish(subject, data, { msgID: msgId, headers: h });
}

/** Publishes logs and events with message ids so JetStream drops re-sent copies. */
export class BuildPublisher {
  private readonly js: JetStreamClient;
  constructor(
    nc: NatsConnection,
    private readonly onLost: (what: string, err: Error) => void = () => undefined,
  ) {
    this.js = jetstream(nc);
  }

  async log(buildId: string, stepId: string, stream: LogStreamName, data: Uint8Array, msgId: string): Promise<void> {
    await publishLog(this.js, subjects.log(buildId, stepId), stream, data, msgId);
  }

  /**
   * Events are the live view only (Temporal holds the truth), so a NATS outage must not
   * fail a step: an event that cannot be published in time is reported and dropped.
   */
  async event(event: BuildEvent, msgId: string): Promise<void> {
    try {
      await this.js.publish(subjects.event(event.buildId), JSON.stringify(BuildEvent.parse(event)), { msgID: msgId, timeout: EVENT_TIMEOUT_MS });
    } catch (err) {
      this.onLost(`${event.type} event of ${event.buildId}`, err as Error);
    }
  }
}
