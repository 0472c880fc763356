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
 * Cuts a service's log into messages at line ends (and every `max` bytes of a longer line), so the
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
 * A followed log's bytes, kept as the stream chunked them (no copy per line), and cut when read
 * into messages of up to `max` bytes that end at line ends: a longer line is cut every `max` bytes
 * from its start, and an unfinished last line waits for its end or the log's. Where the cuts fall
 * depends on what was read before; the publisher continues after whatever JetStream already holds
 * at an offset, so a re-read cut elsewhere doubles nothing.
 */
export class LogBuffer {
  private chunks: Buffer[] = [];
  /** where chunks[0] starts in the log */
  private base = 0;
  private size = 0;
  /** where the unfinished last line starts */
  private lineStart = 0;
  private newlines = 0;
  private ended = false;
  private readonly max: number;
  private readonly countLinesTo: number;

  /** `countLinesTo`: lines are counted up to one past this (a long log is not scanned for them) */
  constructor(opts: { max?: number; countLinesTo?: number } = {}) {
    this.max = opts.max ?? MAX_PIECE;
    this.countLinesTo = opts.countLinesTo ?? 0;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    const nl = chunk.lastIndexOf(0x0a);
    if (nl !== -1) this.lineStart = this.size + nl + 1;
    this.size += chunk.length;
    for (let i = chunk.indexOf(0x0a); i !== -1 && this.newlines <= this.countLinesTo; i = chunk.indexOf(0x0a, i + 1)) this.newlines++;
  }

  /** The log ended: its unfinished last line is read too. */
  end(): void {
    this.ended = true;
  }

  /** Bytes received so far. */
  get received(): number {
    return this.size;
  }

  /** Whole lines received so far, counted up to one past `countLinesTo`. */
  get lines(): number {
    return this.newlines;
  }

  /** The messages from byte `from` on; bytes before it are let go (reads go forward). */
  read(from: number): LogPiece[] {
    let drop = 0;
    while (drop < this.chunks.length && this.base + this.chunks[drop].length <= from) this.base += this.chunks[drop++].length;
    this.chunks.splice(0, drop);
    const start = Math.max(from, this.base);
    const end = this.ended ? this.size : this.lineStart + Math.floor((this.size - this.lineStart) / this.max) * this.max;
    if (end <= start) return [];
    const parts: Buffer[] = [];
    for (let i = 0, at = this.base; i < this.chunks.length && at < end; at += this.chunks[i++].length) {
      parts.push(this.chunks[i].subarray(Math.max(0, start - at), Math.min(this.chunks[i].length, end - at)));
    }
    const bytes = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    const out: LogPiece[] = [];
    for (let at = 0; at < bytes.length;) {
      let stop = Math.min(at + this.max, bytes.length);
      if (stop < bytes.length) {
        const nl = bytes.lastIndexOf(0x0a, stop - 1);
        if (nl >= at) stop = nl + 1;
      }
      out.push({ offset: start + at, data: bytes.subarray(at, stop) });
      at = stop;
    }
    return out;
  }
}
