// Credentials out of logs and errors, as Concourse's build_step_delegate redacts them: every
// line of every value a credential manager gave (trimmed; one character is not a secret)
// becomes ((redacted)). Logs are redacted a line at a time, so a value split across two
// chunks of a stream is still found (LineRedactor).
import { REDACTED } from '../schemas/var-sources';

// Bytes as latin1 text: one char per byte, so replacing in it is byte-exact for any encoding.
const asText = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

export class Redactor {
  // Longest first, so a secret that contains another is replaced whole.
  private needles: string[] = [];

  /** Tracks a value and everything in it (fields of a map, items of a list, the map as JSON). */
  add(value: unknown): void {
    const found = new Set(this.needles);
    const visit = (v: unknown) => {
      if (v === null || v === undefined) return;
      if (typeof v === 'object') {
        found.add(JSON.stringify(v));
        Object.values(v).forEach(visit);
        return;
      }
      for (const line of String(v).split('\n')) {
        const trimmed = line.trim();
        if (trimmed.length > 1) found.add(Buffer.from(trimmed, 'utf8').toString('latin1'));
      }
    };
    visit(value);
    this.needles = [...found].sort((a, b) => b.length - a.length);
  }

  get empty(): boolean {
    return this.needles.length === 0;
  }

  /** Where to cut `text` (bytes as latin1) so no tracked value is split and none could start in what is kept back. */
  safeCut(text: string): number {
    const longest = this.needles[0]?.length ?? 0;
    let cut = text.length - Math.max(0, longest - 1);
    // Moving the cut back can split another value: again until none straddles it.
    for (let moved = true; moved && cut > 0;) {
      moved = false;
      for (const needle of this.needles) {
        for (let at = text.indexOf(needle); at >= 0 && at < cut; at = text.indexOf(needle, at + 1)) {
          if (at + needle.length > cut) {
            cut = at;
            moved = true;
          }
        }
      }
    }
    // A value that starts the chunk and fills it: publish it (redacted) rather than stall.
    return cut > 0 ? cut : Math.min(text.length, longest);
  }

  bytes(data: Uint8Array): Buffer {
    if (this.empty) return Buffer.from(data);
    return Buffer.from(this.replace(asText(data)), 'latin1');
  }

  text(text: string): string {
    if (this.empty) return text;
    return Buffer.from(this.replace(Buffer.from(text, 'utf8').toString('latin1')), 'latin1').toString('utf8');
  }

  private replace(text: string): string {
    let out = text;
    for (const needle of this.needles) if (out.includes(needle)) out = out.replaceAll(needle, REDACTED);
    return out;
  }
}

/** The longest a log line waits for its end before it is published in pieces (a runtime reads at most this much at once). */
export const MAX_LINE_WAIT = 64 * 1024;

/**
 * How many bytes of `data` may be published redacted now: up to its last line end, since a
 * secret never spans lines (each line of a value is redacted on its own). `final`: nothing
 * follows, so all of it. A `full` chunk (as much as one read takes) without a line end is cut anyway (a log line
 * that long cannot wait), before the tail that could begin a value and not around any value.
 */
export function redactableLength(data: Uint8Array, redactor: Redactor, opts: { final: boolean; full: boolean }): number {
  if (opts.final || redactor.empty) return data.length;
  const nl = Buffer.from(data.buffer, data.byteOffset, data.byteLength).lastIndexOf(0x0a);
  if (nl >= 0) return nl + 1;
  if (!opts.full) return 0;
  return redactor.safeCut(asText(data));
}
