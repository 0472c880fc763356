import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';

/**
 * Forking copies the parent's page tables, so a spawn from the worker (hundreds of MB: the
 * Temporal runtime, workflow isolates) blocks its event loop ~10 ms, against ~1 ms from a
 * small process; with many steps starting at once the worker did little else. Step and
 * service processes, probes and setup commands are therefore forked by one small helper
 * node process, which reports their exits (and a command's output). It reads requests from
 * stdin and exits when the worker goes away (stdin closes); a detached process runs on in
 * its own session.
 */
const HELPER = `
const { spawn } = require('child_process');
const out = (m) => process.stdout.write(JSON.stringify(m) + '\\n');
const running = new Map();
require('readline').createInterface({ input: process.stdin })
  .on('line', (line) => {
    const req = JSON.parse(line);
    const { id } = req;
    if (req.kill) {
      running.get(id)?.(req.kill);
      return;
    }
    let child;
    try {
      child = spawn(req.file, req.args, req.capture
        ? { env: req.env, cwd: req.cwd, detached: !!req.group, stdio: [req.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] }
        : { env: req.env, detached: true, stdio: 'ignore' });
    } catch (err) {
      out({ id, error: err.message });
      return;
    }
    // A group's command is killed with all it started (a check's git), which could hold its pipes open.
    const kill = (sig) => { try { req.group ? process.kill(-child.pid, sig) : child.kill(sig); } catch {} };
    running.set(id, kill);
    const output = { stdout: '', stderr: '' };
    let timedOut = false;
    const timer = req.timeoutMs === undefined ? undefined : setTimeout(() => { timedOut = true; kill('SIGKILL'); }, req.timeoutMs);
    if (req.capture) for (const s of ['stdout', 'stderr']) child[s].on('data', (d) => { output[s] += d; });
    // A command that exits without reading its input (EPIPE) is judged by its exit status.
    if (req.input !== undefined) { child.stdin.on('error', () => {}); child.stdin.end(req.input); }
    child.once('spawn', () => out({ id, pid: child.pid }));
    child.once('error', (err) => { running.delete(id); clearTimeout(timer); out({ id, error: err.message }); });
    child.once(req.capture ? 'close' : 'exit', (code, signal) => {
      running.delete(id);
      clearTimeout(timer);
      out(req.capture ? { id, code, signal, ...output, timedOut } : { id, code, signal });
    });
  })
  .on('close', () => process.exit(0));
`;

/**
 * A process the helper started, seen as a ChildProcess is: `exitCode`/`signalCode` are null
 * while it runs, and 'exit' is emitted when it ends. `lost` means its exit can no longer be
 * reported (the helper died): ask /proc instead.
 */
export class SpawnedProcess extends EventEmitter {
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  lost = false;
  constructor(readonly pid: number) {
    super();
  }
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

interface Reply extends Partial<RunResult> {
  id: number;
  pid?: number;
  error?: string;
}

interface Pending {
  reply(r: Reply): void;
  /** the helper died */
  lost(): void;
}

let helper: ChildProcess | undefined;
let nextId = 0;
const pending = new Map<number, Pending>();

function startHelper(): ChildProcess {
  const child = spawn(process.execPath, ['-e', HELPER], { stdio: ['pipe', 'pipe', 'inherit'] });
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const reply = JSON.parse(line) as Reply;
    pending.get(reply.id)?.reply(reply);
  });
  child.once('exit', () => {
    if (helper === child) helper = undefined;
    const lost = [...pending.values()];
    pending.clear();
    for (const p of lost) p.lost();
  });
  // A dead helper shows as its exit (above), not as errors on the way to it.
  child.once('error', () => undefined);
  child.stdin!.on('error', () => undefined);
  // Neither the helper nor its pipes keep the worker alive: the activities waiting on them do.
  child.unref();
  for (const stream of [child.stdin, child.stdout]) (stream as unknown as { unref?: () => void } | null)?.unref?.();
  return child;
}

function send(request: object): void {
  helper ??= startHelper();
  helper.stdin!.write(`${JSON.stringify(request)}\n`);
}

/** Starts the helper now, so the first step does not wait for a node process to start. */
export function warmUpSpawner(): void {
  helper ??= startHelper();
}

/** Spawns `file` detached (own session, no stdio) through the helper. */
export function spawnDetached(file: string, args: string[], env: Record<string, string>): Promise<SpawnedProcess> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    let proc: SpawnedProcess | undefined;
    pending.set(id, {
      reply(r) {
        if (r.pid !== undefined) {
          proc = new SpawnedProcess(r.pid);
          resolve(proc);
          return;
        }
        pending.delete(id);
        if (!proc) reject(new Error(r.error ?? 'the process helper could not start the process'));
        else if (r.error !== undefined) proc.lost = true;
        else {
          proc.exitCode = r.code ?? null;
          proc.signalCode = r.signal ?? null;
          proc.emit('exit', proc.exitCode, proc.signalCode);
        }
      },
      lost() {
        if (proc) proc.lost = true;
        else reject(new Error('the process helper exited before starting the process'));
      },
    });
    send({ id, file, args, env });
  });
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** SIGKILL after this long (the result says timedOut) */
  timeoutMs?: number;
  /** SIGKILL when aborted; the result still comes, once the process has ended */
  signal?: AbortSignal;
  /** written to the command's stdin (closed after it); without it stdin is /dev/null */
  input?: string;
  /** the command in a process group of its own: a timeout or an abort kills the whole group */
  group?: boolean;
}

/** Runs a command through the helper to its end and returns its status and output, as execFile would. */
export function runCommand(file: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const id = nextId++;
  const abort = () => send({ id, kill: 'SIGKILL' });
  return new Promise<RunResult>((resolve, reject) => {
    pending.set(id, {
      reply(r) {
        if (r.pid !== undefined) return;
        pending.delete(id);
        if (r.error !== undefined) reject(new Error(r.error));
        else
          resolve({
            code: r.code ?? null,
            signal: r.signal ?? null,
            stdout: r.stdout ?? '',
            stderr: r.stderr ?? '',
            timedOut: r.timedOut ?? false,
          });
      },
      lost() {
        reject(new Error('the process helper exited while running the command'));
      },
    });
    send({
      id,
      file,
      args,
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      capture: true,
      timeoutMs: opts.timeoutMs,
      input: opts.input,
      group: opts.group,
    });
    if (opts.signal?.aborted) abort();
    else opts.signal?.addEventListener('abort', abort, { once: true });
  }).finally(() => opts.signal?.removeEventListener('abort', abort));
}
