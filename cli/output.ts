import { styleText } from 'node:util';

/** An error the user can act on: what went wrong, and how to fix it. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly fix?: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

let color = process.stdout.isTTY && !process.env.NO_COLOR;

/** `--no-color`: plain text even on a terminal. */
export function disableColor(): void {
  color = false;
}
type Style = Parameters<typeof styleText>[0];

export function paint(style: Style, text: string): string {
  return color ? styleText(style, text) : text;
}

/** Progress and notes go to stderr so stdout carries only the build's own output. */
export function say(message: string): void {
  process.stderr.write(`${message}\n`);
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${Math.round(s % 60)}s`;
  return `${Math.floor(m / 60)}h${m % 60}m`;
}

export function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).join('\n');
}

/** `--json`: one JSON document on stdout, nothing else there. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
