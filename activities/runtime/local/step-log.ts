import fs from 'node:fs/promises';
import path from 'node:path';
import type { BuildPublisher } from '../../../common/nats';
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
  ) {}

  /** Publishes what is new; resolves true when anything was sent. `final`: the step has ended, send an unfinished last line too. */
  async drain(final = false): Promise<boolean> {
    const a = await this.drainFile('stdout', path.join(this.dir, FILES.stdout), final);
    const b = await this.drainFile('stderr', path.join(this.dir, FILES.stderr), final);
    return a || b;
  }

  /** A line from Causeway itself in the step's log (notes are numbered so retries de-duplicate them). */
  async note(text: string): Promise<void> {
    const n = this.offsets.notes;
    await this.publisher.log(this.buildId, this.stepId, 'causeway', Buffer.from(`${text}\n`), `${this.runName}/note/${n}`);
    this.offsets.notes = n + 1;
  }

  /**
   * A note not waited for: its number is taken at once, so a writer continuing from these
   * offsets does not reuse it. Like a live-log line, it is lost if NATS never takes it.
   */
  noteLater(text: string): void {
    const n = this.offsets.notes++;
    this.publisher.log(this.buildId, this.stepId, 'causeway', Buffer.from(`${text}\n`), `${this.runName}/note/${n}`).catch(() => undefined);
  }

  private async drainFile(stream: Exclude<LogStreamName, 'causeway'>, file: string, final: boolean): Promise<boolean> {
    // Polled for every running step: an idle poll costs one stat, no open and no buffer.
    const size = await fs.stat(file).then(
      (st) => st.size,
      () => 0,
    );
    if (size <= this.offsets[stream]) return false;
    const handle = await fs.open(file, 'r');
    let sent = false;
    try {
      const buf = Buffer.alloc(CHUNK);
      for (;;) {
        const { bytesRead } = await handle.read(buf, 0, CHUNK, this.offsets[stream]);
        if (bytesRead === 0) break;
        const offset = this.offsets[stream];
        const held = await this.publisher.logPiece(
          this.buildId,
          this.stepId,
          stream,
          buf.subarray(0, bytesRead),
          `${this.runName}/${stream}/${offset}`,
          { final: final && bytesRead < CHUNK, full: bytesRead === CHUNK },
        );
        // A step with credentials publishes whole lines: the rest waits for its line end.
        if (held === 0) break;
        this.offsets[stream] = offset + held;
        sent = true;
      }
    } finally {
      await handle.close();
    }
    return sent;
  }
}
