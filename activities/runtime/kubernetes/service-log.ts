// A service's log on the kubernetes runtime: its container's output read through the Log API,
// published on the service's own NATS subject with byte-offset message ids, and its last lines
// for the message of a service that failed.
import { Writable } from 'node:stream';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { publishLog } from '../../../common/nats';
import { Redactor } from '../../../common/redact';
import { subjects, type LogStreamName } from '../../../schemas/messages';
import type { ServiceLogOffsets, ServiceRef } from '../../types';
import type { KubeApi } from './api';
import { k8s, type V1Pod } from './client';
import { apiMessage } from './errors';
import { LineCutter, type LogPiece } from './log-pieces';
import { CONTAINERS } from './pod';
import { containerStarted } from './pod-status';
import { serviceObjectName } from './service-pod';

export const NO_OFFSETS: ServiceLogOffsets = { stdout: 0, stderr: 0, notes: 0 };
/** lines of a service's output in the message of a service that failed, as on the local runtime */
const TAIL_LINES = 20;

/** Publishes one message of a service's log: JetStream in a worker, a collector in tests. */
export type ServiceLogPublish = (stream: LogStreamName, data: Uint8Array, msgId: string) => Promise<void>;

/** The service's own subject, as the local runtime publishes it (`causeway watch` shows it as [svc NAME]). */
export function natsServiceLog(nc: NatsConnection, ref: ServiceRef): ServiceLogPublish {
  const js = jetstream(nc);
  const subject = subjects.service(ref.buildId, ref.scopeStepId, ref.name);
  return (stream, data, msgId) => publishLog(js, subject, stream, data, msgId);
}

/**
 * A service's log: the container's output (stdout and stderr as the kubelet merges them), read
 * through the Log API from the start, one message per line whose id is its byte offset, and
 * Causeway's notes, numbered. Bytes below `offsets.stdout` (on NATS already) are read, for the
 * tail, but not sent again; what a retried activity re-sends past them JetStream drops as
 * duplicates. A log that cannot be read or published costs the live view only.
 */
export class ServiceLog {
  readonly offsets: ServiceLogOffsets;
  private readonly skip: number;
  private readonly runName: string;
  private readonly cutter = new LineCutter();
  private readonly lines: string[] = [];
  private stream?: { ended: Promise<void>; abort?: AbortController; closed: boolean };
  private unavailable?: string;
  /** load_var and credential values in the service's scope (the step layer lists them in ref.redact) */
  private readonly redactor = new Redactor();

  constructor(
    private readonly rt: KubeApi,
    private readonly ref: ServiceRef,
    private readonly publish: ServiceLogPublish,
    offsets: ServiceLogOffsets = NO_OFFSETS,
    /** notes of stopService are numbered apart: it runs beside superviseService */
    private readonly writer = 'run',
  ) {
    this.offsets = { ...offsets };
    this.skip = offsets.stdout;
    this.runName = `${ref.runId}/${ref.scopeStepId}/${ref.runKey}/svc/${ref.name}`;
    for (const value of ref.redact ?? []) this.redactor.add(value);
  }

  /** A line from Causeway itself in the service's log. */
  async note(text: string): Promise<void> {
    const n = this.offsets.notes++;
    await this.publish('causeway', Buffer.from(`${this.redact(text)}\n`), `${this.runName}/${this.writer}/note/${n}`).catch(
      () => undefined,
    );
  }

  /** `text` with the values of the service's scope redacted (for errors that quote the log). */
  redact(text: string): string {
    return this.redactor.text(text);
  }

  /** Starts following the container's log once `pod` shows it has run; once per ServiceLog. */
  follow(pod: V1Pod | undefined): void {
    if (this.stream || !containerStarted(pod, CONTAINERS.service)) return;
    let ended: () => void = () => undefined;
    const stream: NonNullable<ServiceLog['stream']> = { ended: new Promise<void>((resolve) => (ended = resolve)), closed: false };
    this.stream = stream;
    const sink = new Writable({
      write: (chunk: Buffer, _enc, cb) => void this.sendLines(this.cutter.push(chunk)).then(() => cb()),
      final: (cb) =>
        void this.sendLines(this.cutter.end()).then(() => {
          ended();
          cb();
        }),
    });
    sink.on('error', () => ended());
    this.rt.calls.log++;
    new (k8s().Log)(this.rt.kc)
      .log(this.rt.namespace, serviceObjectName(this.ref), CONTAINERS.service, sink, { follow: true })
      .then((abort) => {
        stream.abort = abort;
        if (stream.closed) abort.abort();
      })
      .catch((err: unknown) => {
        this.unavailable = apiMessage(err);
        ended();
        return this.note(`the service's log is not available: ${this.unavailable}`);
      });
  }

  get following(): boolean {
    return this.stream !== undefined;
  }

  /** Waits up to `ms` for the end of the log (the kubelet ends it when the container ends), then stops following. */
  async drain(ms: number): Promise<void> {
    if (!this.stream) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.stream.ended, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
    this.close();
  }

  close(): void {
    if (!this.stream) return;
    this.stream.closed = true;
    this.stream.abort?.abort();
  }

  /** The last lines read, for the message of a service that failed. */
  tail(): string {
    const partial = this.cutter.partial.toString('utf8').trimEnd();
    const lines = [...this.lines, ...(partial ? [partial] : [])].slice(-TAIL_LINES);
    if (lines.length > 0) return this.redact(lines.join('\n'));
    return this.unavailable ? `(its log could not be read: ${this.unavailable})` : '(no output)';
  }

  /** Publishes the container's output, cut into lines (follow gives every chunk the Log API reads), redacted, and keeps its tail. */
  async sendLines(pieces: LogPiece[]): Promise<void> {
    for (const p of pieces) {
      const line = p.data.toString('utf8').trimEnd();
      if (line) this.lines.push(line);
    }
    this.lines.splice(0, Math.max(0, this.lines.length - TAIL_LINES));
    const fresh = pieces.filter((p) => p.offset >= this.skip);
    // Sent in order on one connection and acknowledged together: a chunk of many lines costs one round trip.
    // A piece is a whole line (a longer one is cut every 64 KiB, where a value across the cut is not found).
    await Promise.all(
      fresh.map((p) => this.publish('stdout', this.redactor.bytes(p.data), `${this.runName}/stdout/${p.offset}`).catch(() => undefined)),
    );
    const last = fresh.at(-1);
    if (last) this.offsets.stdout = Math.max(this.offsets.stdout, last.offset + last.data.length);
  }
}
