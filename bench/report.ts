import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { StackInfo } from '../cli/dev/stack';

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

/** The machine a benchmark ran on, for its section's heading. */
export function machine(stack: StackInfo): Record<string, string> {
  const temporalVersion = commandOutput(stack.temporal.command, ['--version']) ?? 'unknown';
  return {
    cpus: `${commandOutput('nproc', []) ?? os.cpus().length} (${os.cpus()[0]?.model.trim() ?? 'unknown'})`,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    // A `go install`ed CLI reports 0.0.0-DEV; the provisioning cache directory names the pinned tag.
    temporal:
      `${/temporal-(v[\w.-]+)\//.exec(stack.temporal.command)?.[1] ?? ''} ${temporalVersion.replace(/^temporal version /, '')}`.trim(),
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    load: loadavg(),
  };
}

export function loadavg(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
}

function commandOutput(cmd: string, args: string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

const CLOCK_TICKS = 100;

/** CPU ms of a process and of its reaped children (utime, stime, cutime, cstime of /proc/<pid>/stat); 0 when it is gone. */
export function procCpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** The children of a process (of all its threads), by pid. */
export function childPids(pid: number): number[] {
  try {
    return fs
      .readdirSync(`/proc/${pid}/task`)
      .flatMap((tid) => fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
  } catch {
    return [];
  }
}

/** The whole machine's CPU ms, busy and in all, since boot (/proc/stat's first line): over an interval, how saturated it was. */
export function machineCpuMs(): { busy: number; total: number } {
  const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  // idle and iowait are the time no process wanted a CPU.
  const busy = total - fields[3] - fields[4];
  return { busy: (busy * 1000) / CLOCK_TICKS, total: (total * 1000) / CLOCK_TICKS };
}

/**
 * Runs a benchmark's main and exits with its outcome (0, or 1 with the error's stack). With
 * `--help`, prints the header of the bench's source (what it measures, how to run it, its
 * options) instead: a bench takes minutes and rewrites BENCHMARKS.md, so help must not run it.
 */
export function runMain(main: () => Promise<void>): void {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(usage(process.argv[1] ?? ''));
    process.exit(0);
  }
  main().then(
    () => process.exit(0),
    (err) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : err);
      process.exit(1);
    },
  );
}

/** The leading `//` comment of bench/<name>.ts, for the bench that `script` (dist/bench/<name>.js) runs. */
export function usage(script: string): string {
  const source = path.resolve(path.dirname(script), '../../bench', `${path.basename(script, '.js')}.ts`);
  let text: string;
  try {
    text = fs.readFileSync(source, 'utf8');
  } catch {
    return `no usage: ${source} is not there (run the bench from the repository)\n`;
  }
  const lines: string[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('//')) break;
    lines.push(line.replace(/^\/\/ ?/, ''));
  }
  return `${lines.join('\n')}\n`;
}
