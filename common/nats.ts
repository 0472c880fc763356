import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type PubAck, type StoredMsg } from '@nats-io/jetstream';
import { headers } from '@nats-io/nats-core';
import { natsAuth, type NatsRole } from './nats-auth';
import {
  BUILD_STREAM,
  BUILD_SUBJECTS,
  BuildEvent,
  LOG_RAW_LENGTH_HEADER,
  LOG_STREAM_HEADER,
  subjects,
  type LogStreamName,
} from '../schemas/messages';

const NANOS_PER_SECOND = 1_000_000_000;

/**
 * Connects as `role` (common/nats-auth.ts; the CLI and tests as the operator, workers as
 * workers), with the credentials of the dev stack in `home` (default CAUSEWAY_HOME) unless
 * the environment names others.
 */
export async function connectNats(url: string, name: string, auth: { role?: NatsRole; home?: string } = {}): Promise<NatsConnection> {
  try {
    return await connect({
      servers: url,
      name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      ...natsAuth(auth.role ?? 'operator', auth.home),
    });
  } catch (err) {
    throw new Error(`cannot reach NATS at ${url}: ${(err as Error).message}. Start the stack with \`causeway dev up\` or set NATS_URL.`, {
      cause: err,
    });
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
export async function publishLog(
  js: JetStreamClient,
  subject: string,
  stream: LogStreamName,
  data: Uint8Array,
  msgId: string,
): Promise<void> {
  await publishLogAcked(js, subject, stream, data, msgId);
}

function publishLogAcked(
  js: JetStreamClient,
  subject: string,
  stream: LogStreamName,
  data: Uint8Array,
  msgId: string,
  rawLength?: number,
): Promise<PubAck> {
  const h = headers();
  h.set(LOG_STREAM_HEADER, stream);
  if (rawLength !== undefined) h.set(LOG_RAW_LENGTH_HEADER, String(rawLength));
  return js.publish(subject, data, { msgID: msgId, headers: h });
}

/** Publishes logs and events with message ids so JetStream drops re-sent copies. */
export class BuildPublisher {
  private readonly js: JetStreamClient;
  private jsm?: Promise<JetStreamManager>;
  constructor(
    private readonly nc: NatsConnection,
    private readonly onLost: (what: string, err: Error) => void = () => undefined,
  ) {
    this.js = jetstream(nc);
  }

  /** The subject of a step's log; a service's publisher puts its output on the service's own. */
  protected logSubject(buildId: string, stepId: string): string {
    return subjects.log(buildId, stepId);
  }

  async log(buildId: string, stepId: string, stream: LogStreamName, data: Uint8Array, msgId: string): Promise<void> {
    await publishLog(this.js, this.logSubject(buildId, stepId), stream, data, msgId);
  }

  /**
   * Publishes a piece of a log that starts at a byte offset (its id) and resolves to how many
   * bytes JetStream holds from that offset. An earlier attempt (before a worker crash, or a
   * publish whose ack was lost) may have sent a shorter piece under the same id: JetStream
   * drops ours as a duplicate and keeps that one, so the writer must continue after it, not
   * after ours, or the bytes between are lost.
   *
   * A redacted piece is not as long as the bytes of the log it stands for: `rawLength` says
   * how many those are, travels in a header, and is what the result counts.
   */
  async logPiece(
    buildId: string,
    stepId: string,
    stream: LogStreamName,
    data: Uint8Array,
    msgId: string,
    rawLength?: number,
  ): Promise<number> {
    const held = await this.publishOrHeld(buildId, stepId, stream, data, msgId, rawLength);
    if (held === undefined) return rawLength ?? data.length;
    const covered = Number(held.header?.get(LOG_RAW_LENGTH_HEADER) || NaN);
    return Number.isInteger(covered) ? covered : held.data.length;
  }

  /**
   * Publishes a whole log message under an id and resolves false when the id is taken by a
   * different message: a retried attempt numbering its notes from a lagging heartbeat reuses
   * the ids of notes an earlier attempt sent, and JetStream would silently drop its own as
   * duplicates. The same bytes under the id are the same note sent again (true, not doubled).
   */
  async logUnique(buildId: string, stepId: string, stream: LogStreamName, data: Uint8Array, msgId: string): Promise<boolean> {
    const held = await this.publishOrHeld(buildId, stepId, stream, data, msgId);
    return held === undefined || Buffer.from(held.data).equals(Buffer.from(data));
  }

  /** Publishes; when JetStream already holds a message under the id, resolves to that message. */
  private async publishOrHeld(
    buildId: string,
    stepId: string,
    stream: LogStreamName,
    data: Uint8Array,
    msgId: string,
    rawLength?: number,
  ): Promise<StoredMsg | undefined> {
    const ack = await publishLogAcked(this.js, this.logSubject(buildId, stepId), stream, data, msgId, rawLength);
    if (!ack.duplicate) return undefined;
    // The duplicate's ack names the original's sequence.
    this.jsm ??= jetstreamManager(this.nc);
    const held = await (await this.jsm).streams.getMessage(ack.stream, { seq: ack.seq });
    if (!held)
      throw new Error(
        `JetStream acknowledged log message ${msgId} as a duplicate of sequence ${ack.seq} of ${ack.stream}, which it no longer holds`,
      );
    return held;
  }

  /**
   * Events are the live view only (Temporal holds the truth), so a NATS outage must not
   * fail a step: an event that cannot be published in time is reported and dropped.
   */
  async event(event: BuildEvent, msgId: string): Promise<void> {
    try {
      await this.js.publish(subjects.event(event.buildId), JSON.stringify(BuildEvent.parse(event)), {
        msgID: msgId,
        timeout: EVENT_TIMEOUT_MS,
      });
    } catch (err) {
      this.onLost(`${event.type} event of ${event.buildId}`, err as Error);
    }
  }
}
