// How a container's log (a task's or a service's), read from the Log API, becomes NATS
// messages whose ids are byte offsets.
/** How long a container that ended may take to end its log stream (the kubelet ends it when the container ends). */
export const CONTAINER_LOG_DRAIN_MS = 5_000;

/** Longest message of a container's log: a longer line is cut every this many bytes from its start. */
const MAX_PIECE = 64 * 1024;

/** Bytes of a log and where they start in it: the offset is the message id. */
export interface LogPiece {
  data: Buffer;
  offset: number;
}

/**
 * Cuts a log into messages at line ends (and every `max` bytes of a longer line), so the
 * pieces and their offsets depend on the log's bytes only, not on how the kubelet chunked
 * them: a re-read from the start makes the same message ids, which JetStream de-duplicates.
 */
export class LineCutter {
  private pending: Buffer[] = [];
  private pendingLength = 0;
  private start = 0;

  constructor(private readonly max = MAX_PIECE) {}

  push(chunk: Buffer): LogPiece[] {
    const out: LogPiece[] = [];
    for (let pos = 0; pos < chunk.length;) {
      const nl = chunk.indexOf(0x0a, pos);
      const end = Math.min(nl === -1 ? chunk.length : nl + 1, pos + this.max - this.pendingLength);
      this.pending.push(chunk.subarray(pos, end));
      this.pendingLength += end - pos;
      pos = end;
      if (chunk[end - 1] === 0x0a || this.pendingLength === this.max) out.push(this.take());
    }
    return out;
  }

  /** The log ended: its unfinished last line. */
  end(): LogPiece[] {
    return this.pendingLength > 0 ? [this.take()] : [];
  }

  /** Bytes cut into pieces so far: where the next piece starts. */
  get taken(): number {
    return this.start;
  }

  /** The unfinished line so far. */
  get partial(): Buffer {
    return Buffer.concat(this.pending);
  }

  private take(): LogPiece {
    const piece = { data: Buffer.concat(this.pending), offset: this.start };
    this.start += this.pendingLength;
    this.pending = [];
    this.pendingLength = 0;
    return piece;
  }
}

/**
 * Consecutive pieces joined into messages of up to `max` bytes: a log of many short lines is
 * sent in few messages, not one per line. The joins may fall elsewhere on a re-read; the
 * publisher continues after whatever JetStream already holds at an offset, so nothing doubles.
 */
export function joinPieces(pieces: LogPiece[], max = MAX_PIECE): LogPiece[] {
  const out: LogPiece[] = [];
  let run: LogPiece[] = [];
  let length = 0;
  const flush = () => {
    if (run.length > 0) out.push({ offset: run[0].offset, data: run.length === 1 ? run[0].data : Buffer.concat(run.map((p) => p.data)) });
    run = [];
    length = 0;
  };
  for (const p of pieces) {
    const contiguous = run.length > 0 && run[0].offset + length === p.offset;
    if (!contiguous || length + p.data.length > max) flush();
    run.push(p);
    length += p.data.length;
  }
  flush();
  return out;
}
