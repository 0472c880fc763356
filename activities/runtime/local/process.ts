import { readdirSync, writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { spawnDetached, type SpawnedProcess } from './spawner';

// A step process is detached from the worker: its own session and process group,
// output to files, exit status written by a tiny sh wrapper. Killing the worker
// therefore does not kill the step, and a retried activity re-attaches by reading
// these files from the step's directory.
const WRAPPER = [
  'dir=$1; cwd=$2; cgroup=$3; shift 3',
  // The wrapper records itself first, so a worker killed right after spawning still
  // leaves a pid for the retried activity to find.
  'echo $$ >"$dir/pid"',
  '[ -n "$cgroup" ] && echo $$ > "$cgroup"',
  'cd "$cwd" || exit 125',
  '"$@" >"$dir/stdout" 2>"$dir/stderr" </dev/null',
  'status=$?',
  // One small write by a builtin: a reader sees an empty file or the whole status (no mv process).
  'echo $status >"$dir/exit"',
  // The same status as the wrapper's own: the worker that started it takes it from the exit event, without reading the file.
  'exit $status',
].join('\n');

/** The wrapper's own exit status when its `cd` fails: it records no status then. */
const CD_FAILED = 125;

export const FILES = { pid: 'pid', starting: 'starting', exit: 'exit', stdout: 'stdout', stderr: 'stderr' } as const;

/** How long a retried activity waits for the pid of a wrapper spawned just before a crash. */
const PID_WAIT_MS = 2000;

export interface StepProcess {
  pid: number;
  /** the step's directory: it is in the wrapper's command line, so a recycled pid is not mistaken for the step */
  dir: string;
  /** present when this worker started the process: exits are seen at once instead of by polling */
  child?: SpawnedProcess;
}

export interface StartOptions {
  dir: string;
  cwd: string;
  command: string[];
  env: Record<string, string>;
  /** a cgroup's procs file the wrapper joins before running the command */
  cgroupProcs?: string;
  /** extra lines run by the wrapper first (e.g. `ulimit -v`) */
  prelude?: string[];
  /** the `starting` marker's content: what a re-attaching attempt needs besides the process */
  marker?: string;
}

export async function startProcess(opts: StartOptions): Promise<StepProcess> {
  // Synchronous: a small file costs a few system calls, against three thread-pool round trips for writeFile.
  writeFileSync(path.join(opts.dir, FILES.starting), opts.marker ?? '');
  const script = [...(opts.prelude ?? []), WRAPPER].join('\n');
  const child = await spawnDetached('/bin/sh', ['-c', script, 'sh', opts.dir, opts.cwd, opts.cgroupProcs ?? '', ...opts.command], opts.env);
  return { pid: child.pid, dir: opts.dir, child };
}

/** The step process a previous attempt started, if any (running or finished). */
export async function findProcess(dir: string): Promise<StepProcess | undefined> {
  // One look at the directory answers the common case, a step that was never started (its
  // directory is not there yet): synchronous, one failed system call against a thread-pool round trip.
  let files: string[];
  try {
    files = readdirSync(dir);
  } catch {
    return undefined;
  }
  if (!files.includes(FILES.starting)) return undefined;
  const pidFile = path.join(dir, FILES.pid);
  for (const deadline = Date.now() + PID_WAIT_MS; ;) {
    const pid = Number.parseInt(await fs.readFile(pidFile, 'utf8').catch(() => ''), 10);
    if (!Number.isNaN(pid)) return { pid, dir };
    // Spawned, but the wrapper has not written its pid yet (or never will: the spawn failed).
    if (Date.now() > deadline) return undefined;
    await delay(20);
  }
}

/** The exit status once the process has ended; a child of this worker is not polled while it runs, its exit is an event. */
export async function exitStatusOf(proc: StepProcess): Promise<number | undefined> {
  const child = proc.child;
  if (child && !child.lost) {
    if (child.exitCode === null && child.signalCode === null) return undefined;
    if (child.exitCode !== null && child.exitCode !== CD_FAILED) return child.exitCode;
  }
  return exitStatus(proc.dir);
}

export async function exitStatus(dir: string): Promise<number | undefined> {
  try {
    const text = await fs.readFile(path.join(dir, FILES.exit), 'utf8');
    // Complete only with its newline: the wrapper may be mid-write.
    if (!text.endsWith('\n')) return undefined;
    const code = Number.parseInt(text, 10);
    return Number.isNaN(code) ? undefined : code;
  } catch {
    return undefined;
  }
}

export async function isAlive(proc: StepProcess): Promise<boolean> {
  if (proc.child && !proc.child.lost) return proc.child.exitCode === null && proc.child.signalCode === null;
  try {
    const [stat, cmdline] = await Promise.all([
      fs.readFile(`/proc/${proc.pid}/stat`, 'utf8'),
      fs.readFile(`/proc/${proc.pid}/cmdline`, 'utf8'),
    ]);
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && cmdline.split('\0').includes(proc.dir);
  } catch {
    return false;
  }
}

/** Resolves when the process ends, or after `ms`, whichever is first. */
export function waitExit(proc: StepProcess, ms: number): Promise<void> {
  const child = proc.child;
  if (!child || child.lost || child.exitCode !== null || child.signalCode !== null) return delay(ms);
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    child.once('exit', done);
    function done() {
      clearTimeout(timer);
      child?.removeListener('exit', done);
      resolve();
    }
  });
}

/** SIGTERM to the step's whole process group, SIGKILL after the grace period. */
export async function terminate(proc: StepProcess, graceMs: number): Promise<'exited' | 'killed'> {
  signalGroup(proc.pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!(await groupAlive(proc.pid))) return 'exited';
    await delay(50);
  }
  signalGroup(proc.pid, 'SIGKILL');
  return 'killed';
}

/** Kills whatever the step left running in the background once its main command ended, as a container's end would. */
export function reapGroup(proc: StepProcess): void {
  signalGroup(proc.pid, 'SIGKILL');
}

/** Sends a signal to a step's whole process group; a no-op when the group is gone. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** Whether any process of the step's group still runs (its wrapper may be gone while what it ran is not). */
export async function groupAlive(pgid: number): Promise<boolean> {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}
