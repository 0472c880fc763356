import { setTimeout as delay } from 'node:timers/promises';
import { DeliverPolicy, JetStreamApiCodes, JetStreamApiError, jetstream, jetstreamManager, type Consumer } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  BUILD_STREAM,
  BuildEvent,
  LOG_STREAM_HEADER,
  LogStreamName,
  serviceOfSubject,
  stepIdOfLogSubject,
  subjects,
} from '../schemas/messages';

/** `time`: when JetStream stored the message (its output arrived), for `watch --timestamps`. */
export type BuildRecord = { time: Date } & (
  | { kind: 'log'; stepId: string; stream: LogStreamName; data: Uint8Array }
  | { kind: 'event'; event: BuildEvent }
  /** a service's output; `scopeStepId` is the step whose `services:` started it */
  | { kind: 'service'; scopeStepId: string; name: string; stream: LogStreamName; data: Uint8Array }
);

/**
 * A build's logs and events from the start (or `since`), in publish order. With `follow`, waits for
 * more: until `end` has resolved to a stream sequence and every message of the build up to it was
 * read, or (without `end`) until the build-finished event. Without `follow`, stops at what the
 * stream holds now.
 */
export async function* readBuild(
  nc: NatsConnection,
  buildId: string,
  opts: { follow: boolean; since?: Date; end?: Promise<number> },
): AsyncGenerator<BuildRecord> {
  const js = jetstream(nc);
  // `since` skips what earlier runs of the build (before a retry) logged.
  const start = opts.since ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: opts.since.toISOString() } : {};
  let endSeq: number | undefined;
  let lastSeq = 0;
  let stop = () => undefined as void;
  void opts.end?.then((seq) => {
    endSeq = seq;
    if (lastSeq >= seq) stop();
  });
  const consumer = await buildConsumer(
    () => js.consumers.get(BUILD_STREAM, { filter_subjects: subjects.allOfBuild(buildId), ...start }),
    opts.follow ? () => endSeq === 0 : undefined,
  );
  if (!consumer || (!opts.follow && (await consumer.info()).num_pending === 0)) return;
  const messages = await consumer.consume();
  // The end may be known before a message arrives (the reader was already past it, or the build has none): stop waiting then.
  stop = () => messages.stop();
  if (endSeq !== undefined && lastSeq >= endSeq) stop();
  try {
    for await (const msg of messages) {
      lastSeq = msg.seq;
      const stepId = stepIdOfLogSubject(buildId, msg.subject);
      let finished = false;
      const service = stepId === undefined ? serviceOfSubject(buildId, msg.subject) : undefined;
      const stream = LogStreamName.safeParse(msg.headers?.get(LOG_STREAM_HEADER));
      const time = new Date(Math.floor(msg.info.timestampNanos / 1e6));
      if (stepId !== undefined) {
        yield { kind: 'log', time, stepId, stream: stream.success ? stream.data : 'stdout', data: msg.data };
      } else if (service) {
        yield { kind: 'service', time, ...service, stream: stream.success ? stream.data : 'stdout', data: msg.data };
      } else {
        const event = BuildEvent.safeParse(safeJson(msg.data));
        if (event.success) {
          finished = event.data.type === 'build-finished';
          yield { kind: 'event', time, event: event.data };
        }
      }
      if (opts.follow && opts.end) {
        // Not at build-finished: a message stored after it (a late note) still belongs to the log.
        if (endSeq !== undefined && msg.seq >= endSeq) break;
      } else if (msg.info.pending === 0 && (!opts.follow || finished)) break;
    }
  } finally {
    messages.stop();
  }
}

/**
 * The stream of a fresh stack is made by its first worker, which may still be starting when
 * `causeway run` begins to follow: following (`wait`) waits for the stream until `wait` says the
 * build has nothing to read; a plain read finds nothing.
 */
async function buildConsumer(get: () => Promise<Consumer>, wait: (() => boolean) | undefined): Promise<Consumer | undefined> {
  for (;;) {
    try {
      return await get();
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err;
      if (!wait || wait()) return undefined;
      await delay(STREAM_WAIT_MS);
    }
  }
}

/**
 * The stream sequence of the build's last message, 0 when the stream holds none. Asked once the
 * build has ended, it bounds the whole log: a step publishes its output and waits for JetStream's
 * ack before its activity completes, and build-finished's publish is awaited too, so all of it
 * was stored before the workflow could end.
 */
export async function lastSequenceOfBuild(nc: NatsConnection, buildId: string): Promise<number> {
  try {
    // No check of the JetStream API first (a round trip more, after the build has ended): the build's consumer already used it.
    const jsm = await jetstreamManager(nc, { checkAPI: false });
    const last = await jsm.streams.getMessage(BUILD_STREAM, { last_by_subj: subjects.allOfBuild(buildId) });
    return last?.seq ?? 0;
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return 0;
    throw err;
  }
}

const STREAM_WAIT_MS = 250;

/** Every step's output as text, for tests and summaries. */
export async function collectLogs(nc: NatsConnection, buildId: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const r of readBuild(nc, buildId, { follow: false })) {
    if (r.kind === 'log' && r.stream !== 'causeway') out.set(r.stepId, (out.get(r.stepId) ?? '') + Buffer.from(r.data).toString('utf8'));
  }
  return out;
}

/** Every service's output (with Causeway's notes) as text, keyed `<scope step id>/<name>`. */
export async function collectServiceLogs(nc: NatsConnection, buildId: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const r of readBuild(nc, buildId, { follow: false })) {
    if (r.kind !== 'service') continue;
    const key = `${r.scopeStepId}/${r.name}`;
    out.set(key, (out.get(key) ?? '') + Buffer.from(r.data).toString('utf8'));
  }
  return out;
}

/** Lines and characters of a step's log a failure message quotes: enough to see why, small in history. */
export const LOG_TAIL = { lines: 10, lineChars: 200 } as const;
/** How far back in the stream (every build's messages) the tail looks for the step's own: bounds its cost whatever the log's size. */
const TAIL_WINDOW = 64;

/**
 * The last lines of a step's log (stdout, stderr and Causeway's notes) as JetStream holds it
 * now: the step's messages among the stream's last TAIL_WINDOW before and including its last
 * one. Empty when the step logged nothing or NATS cannot answer: the tail only decorates a failure.
 */
export async function logTail(nc: NatsConnection, buildId: string, stepId: string): Promise<string> {
  const subject = subjects.log(buildId, stepId);
  try {
    const last = await (await jetstreamManager(nc)).streams.getMessage(BUILD_STREAM, { last_by_subj: subject });
    if (!last) return '';
    const consumer = await jetstream(nc).consumers.get(BUILD_STREAM, {
      filter_subjects: [subject],
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: Math.max(1, last.seq - TAIL_WINDOW),
    });
    let text = '';
    for await (const msg of await consumer.fetch({ max_messages: TAIL_WINDOW + 1, expires: 2000 })) {
      // Only the end is kept: a window of big chunks must not pile up in memory.
      text = (text + Buffer.from(msg.data).toString('utf8')).slice(-LOG_TAIL.lines * LOG_TAIL.lineChars * 2);
      if (msg.seq >= last.seq) break;
    }
    return text
      .split('\n')
      .filter((line) => line.trim() !== '')
      .slice(-LOG_TAIL.lines)
      .map((line) => (line.length > LOG_TAIL.lineChars ? `${line.slice(0, LOG_TAIL.lineChars)}…` : line))
      .join('\n');
  } catch {
    return '';
  }
}

function safeJson(data: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(data).toString('utf8'));
  } catch {
    return undefined;
  }
}
