// Go-style durations, Concourse memory sizes, and "did you mean" suggestions.

const DURATION_UNITS_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};
const MAX_DURATION_MS = 9_223_372_036_854;
const DURATION_PART = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;

/** Parses a Go duration ("1h30m", "90s", "500ms", "1.5h") into milliseconds. */
export function parseDuration(s: string): number {
  const text = s.trim();
  if (text === '0') return 0;
  const bad = () => new Error(`invalid duration \`${s}\`: expected a Go duration like "90s", "1h30m", "500ms" or "1.5h"`);
  if (text === '') throw bad();
  let ms = 0;
  DURATION_PART.lastIndex = 0;
  while (DURATION_PART.lastIndex < text.length) {
    const m = DURATION_PART.exec(text);
    if (!m) throw bad();
    ms += Number(m[1]) * DURATION_UNITS_MS[m[2]];
  }
  // Go's durations are int64 nanoseconds; Concourse refuses a longer one ("time: invalid duration").
  if (ms > MAX_DURATION_MS) throw new Error(`invalid duration \`${s}\`: longer than the longest Go duration, 2562047h47m16s`);
  return Math.round(ms);
}

// Concourse reads memory limits with cloudfoundry's bytefmt, where KB = K = KiB = 1024.
const MEMORY_UNITS: Record<string, number> = { B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };
const MEMORY_PATTERN = /^(\d+(?:\.\d+)?)\s*([BKMGT])(?:I?B)?$/;

/** Parses a memory size: an integer of bytes, or "1GB", "512MB", "256M", "1Gi". */
export function parseMemory(v: number | string): number {
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v) && v >= 0) return v;
    throw new Error(`invalid memory size ${v}: expected a whole number of bytes`);
  }
  const text = v.trim().toUpperCase();
  const m = /^\d+$/.test(text) ? [text, text, 'B'] : MEMORY_PATTERN.exec(text.endsWith('I') ? `${text}B` : text);
  if (!m) throw new Error(`invalid memory size \`${v}\`: expected bytes or a size like "512MB", "1GB", "256M", "1Gi"`);
  const bytes = Math.round(Number(m[1]) * MEMORY_UNITS[m[2]]);
  if (!Number.isSafeInteger(bytes)) throw new Error(`invalid memory size \`${v}\`: larger than ${Number.MAX_SAFE_INTEGER} bytes`);
  return bytes;
}

function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/** The nearest candidate when it is close enough to be a likely typo. */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = levenshtein(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}
