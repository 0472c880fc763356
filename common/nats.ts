import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager, type PubAck } from '@nats-io/jetstream';
import { headers } from '@nats-io/nats-core';
import { natsAuth, type NatsRole } from './nats-auth';
import { BUILD_STREAM, BUILD_SUBJECTS, BuildEvent, LOG_RAW_LENGTH_HEADER, LOG_STREAM_HEADER, subjects, type LogStreamName } from '../schemas/messages';
import { redactableLength, type Redactor } from './redact';

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
  /** the credentials of the steps running now, by `<build>/<step>`: their logs are redacted */
  private readonly redactors = new Map<string, Redactor>();
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

  /**
   * Redacts the values `redactor` tracks from a step's logs (every stream, Causeway's notes
   * too) until the returned function is called. A step that runs again registers again.
   */
  redactStep(buildId: string, stepId: string, redactor: Redactor): () => void {
    const key = `${buildId}/${stepId}`;
    this.redactors.set(key, redactor);
    return () => {
      if (this.redactors.get(key) === redactor) this.redactors.delete(key);
    };
  }

  private redactorOf(buildId: string, stepId: string): Redactor | undefined {
    const r = this.redactors.get(`${buildId}/${stepId}`);
    return r && !r.empty ? r : undefined;
  }

  /** One message; the caller cuts its log at line ends (a secret split across two messages is not redacted). */
  async log(buildId: string, stepId: string, stream: LogStreamName, data: Uint8Array, msgId: string): Promise<void> {
    const redactor = this.redactorOf(buildId, stepId);
    await publishLog(this.js, this.logSubject(buildId, stepId), stream, redactor ? redactor.bytes(data) : data, msgId);
  }

  /**
   * Publishes a piece of a log that starts at a byte offset (its id) and resolves to how many
   * bytes JetStream holds from that offset. An earlier attempt (before a worker crash, or a
   * publish whose ack was lost) may have sent a shorter piece under the same id: JetStream
   * drops ours as a duplicate and keeps that one, so the writer must continue after it, not
   * after ours, or the bytes between are lost. The duplicate's ack names the original's
   * sequence, whose length is read back.
   *
   * A step with credentials publishes whole lines only, redacted (so a secret split across
   * two reads is still found), and the message says how many bytes of the log it covers: the
   * result is that, and may be 0 when no line is complete yet. `final`: nothing follows.
   */
  async logPiece(
    buildId: string,
    stepId: string,
    stream: LogStreamName,
    data: Uint8Array,
    msgId: string,
    opts: { final: boolean; full: boolean } = { final: true, full: false },
  ): Promise<number> {
    const redactor = this.redactorOf(buildId, stepId);
    let rawLength: number | undefined;
    if (redactor) {
      rawLength = redactableLength(data, redactor, opts);
      if (rawLength === 0) return 0;
      data = redactor.bytes(data.subarray(0, rawLength));
    }
    const ack = await publishLogAcked(this.js, this.logSubject(buildId, stepId), stream, data, msgId, rawLength);
    if (!ack.duplicate) return rawLength ?? data.length;
    this.jsm ??= jetstreamManager(this.nc);
    const held = await (await this.jsm).streams.getMessage(ack.stream, { seq: ack.seq });
    if (!held)
      throw new Error(
        `JetStream acknowledged log message ${msgId} as a duplicate of sequence ${ack.seq} of ${ack.stream}, which it no longer holds`,
      );
    const covered = Number(held.header?.get(LOG_RAW_LENGTH_HEADER) || NaN);
    return Number.isInteger(covered) ? covered : held.data.length;
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
