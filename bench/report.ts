import fs from 'node:fs';

/**
 * Writes one benchmark's section of BENCHMARKS.md: `text` runs from the `start` marker to the
 * `end` marker and replaces what stood between them, so each benchmark refreshes only its
 * own section; a section not there yet is appended, and a missing file is created.
 */
export function writeSection(file: string, markers: { start: string; end: string }, text: string): void {
  let existing = '';
  try {
    existing = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const start = existing.indexOf(markers.start);
  const end = existing.indexOf(markers.end);
  let next: string;
  if (start >= 0 && end > start) next = existing.slice(0, start) + text + existing.slice(end + markers.end.length);
  else if (existing.trim()) next = `${existing.trimEnd()}\n\n${text}\n`;
  else next = `# Benchmarks\n\nEach section is written by one benchmark under \`bench/\`; rerun it to refresh its section.\n\n${text}\n`;
  fs.writeFileSync(file, next);
}
