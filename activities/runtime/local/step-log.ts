import { closeSync, openSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import type { BuildPublisher } from '../../../common/nats';
import { MAX_LINE_WAIT, redactableLength, type Redactor } from '../../../common/redact';
import type { LogStreamName } from '../../../schemas/messages';
import { FILES } from './process';

const CHUNK = 64 * 1024;

export interface LogOffsets {
  stdout: number;
  stderr: number;
  notes: number;
}

/**
 * Copies a step's stdout/stderr files to NATS byte for byte, each byte exactly once, from any
 * resume point. Every chunk's message id is its start offset; offsets only move after JetStream
 * acknowledged a chunk, and by the length of the chunk JetStream holds under that id. A retried
 * activity resumes from its last heartbeat, which can lag what was acknowledged: its first chunk
 * is then longer than the one already held under the same id, JetStream drops it as a duplicate,
 * and the writer continues after the held one (see BuildPublisher.logPiece). So the log is a
 * chain of chunks, each starting where the previous ended, whatever the crash. That holds within
 * JetStream's duplicate window (ensureBuildStream). While NATS is unreachable the files are the buffer.
 */
export class StepLog {
  constructor(
    private readonly publisher: BuildPublisher,
    private readonly buildId: string,
    private readonly stepId: string,
    private readonly dir: string,
    /** unique per run of the step: build run, step, attempt */
    private readonly runName: string,
    readonly offsets: LogOffsets = { stdout: 0, stderr: 0, notes: 0 },
    /** values replaced by ((redacted)) in what is published (whole lines at a time, as a task's log) */
    private readonly redactor?: Redactor,
  ) {}

  /** Publishes what is new; resolves true when anything was sent. `final`: the writer has ended, a last line without its end goes too. */
  async drain(final = false): Promise<boolean> {
    const a = await this.drainFile('stdout', path.join(this.dir, FILES.stdout), final);
    const b = await this.drainFile('stderr', path.join(this.dir, FILES.stderr), final);
    return a || b;
  }

  /**
   * A line from Causeway itself in the step's log. Notes are numbered so that a retry sending
   * the same note again is de-duplicated; a retry resuming from a heartbeat that lags the
   * notes already sent finds its numbers taken by other notes and moves on to the next free one.
   */
  async note(text: string): Promise<void> {
    const data = Buffer.from(`${this.redact(text)}\n`);
    for (;;) {
      // Taken at once, so a noteLater meanwhile never shares it.
      const n = this.offsets.notes++;
      if (await this.publisher.logUnique(this.buildId, this.stepId, 'causeway', data, `${this.runName}/note/${n}`)) return;
    }
  }

  /** `text` with the tracked values redacted (for errors that quote the log). */
  redact(text: string): string {
    return this.redactor ? this.redactor.text(text) : text;
  }

  /** A note not waited for: like a live-log line, it is lost if NATS never takes it. */
  noteLater(text: string): void {
    this.note(text).catch(() => undefined);
  }

  private async drainFile(stream: Exclude<LogStreamName, 'causeway'>, file: string, final: boolean): Promise<boolean> {
    let sent = false;
    for (;;) {
      const data = readFrom(file, this.offsets[stream]);
      if (!data) return sent;
      const offset = this.offsets[stream];
      const id = `${this.runName}/${stream}/${offset}`;
      let held: number;
      if (this.redactor && !this.redactor.empty) {
        // Whole lines only, so a value split between two writes is still found.
        const n = redactableLength(data, this.redactor, { final, full: data.length >= MAX_LINE_WAIT });
        if (n === 0) return sent;
        held = await this.publisher.logPiece(this.buildId, this.stepId, stream, this.redactor.bytes(data.subarray(0, n)), id, n);
      } else held = await this.publisher.logPiece(this.buildId, this.stepId, stream, data, id);
      this.offsets[stream] = offset + held;
      sent = true;
    }
  }
}

/** Up to 64 KiB of `file` from byte `offset`, or undefined when nothing is there yet. */
export function readFrom(file: string, offset: number): Buffer | undefined {
  // Synchronous: polled for every running step, and a step's files are small and just written (in
  // the page cache), so each system call is microseconds, where each thread-pool round trip (two
  // stats per poll, three more for a read) waited for a CPU on a loaded machine (bench:step-overhead).
  // An idle poll costs one stat, no open and no buffer.
  const size = statSync(file, { throwIfNoEntry: false })?.size ?? 0;
  if (size <= offset) return undefined;
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(Math.min(CHUNK, size - offset));
    const bytesRead = readSync(fd, buf, 0, buf.length, offset);
    return bytesRead > 0 ? buf.subarray(0, bytesRead) : undefined;
  } finally {
    closeSync(fd);
  }
}
