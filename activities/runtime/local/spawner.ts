import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { createInterface } from 'node:readline';

/**
 * Forking copies the parent's page tables, so a spawn from the worker (hundreds of MB: the
 * Temporal runtime, workflow isolates) blocks its event loop ~10 ms, against ~1 ms from a
 * small process; with many steps starting at once the worker did little else. Step and
 * service processes are therefore forked by one small helper node process, which also
 * reports their exits. It reads requests from stdin and exits when the worker goes away
 * (stdin closes); what it started runs on, detached in its own session.
 */
const HELPER = `
const { spawn } = require('child_process');
const out = (m) => process.stdout.write(JSON.stringify(m) + '\\n');
require('readline').createInterface({ input: process.stdin })
  .on('line', (line) => {
    const { id, file, args, env } = JSON.parse(line);
    let child;
    try {
      child = spawn(file, args, { detached: true, stdio: 'ignore', env });
    } catch (err) {
      out({ id, error: err.message });
      return;
    }
    child.once('spawn', () => out({ id, pid: child.pid }));
    child.once('error', (err) => out({ id, error: err.message }));
    child.once('exit', (code, signal) => out({ id, code, signal }));
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

interface Pending {
  resolve: (p: SpawnedProcess) => void;
  reject: (err: Error) => void;
  proc?: SpawnedProcess;
}

interface Reply {
  id: number;
  pid?: number;
  error?: string;
  code?: number | null;
  signal?: NodeJS.Signals | null;
}

let helper: ChildProcess | undefined;
let nextId = 0;
const pending = new Map<number, Pending>();

function startHelper(): ChildProcess {
  const child = spawn(process.execPath, ['-e', HELPER], { stdio: ['pipe', 'pipe', 'inherit'] });
  createInterface({ input: child.stdout! }).on('line', (line) => onReply(JSON.parse(line) as Reply));
  child.once('exit', () => {
    if (helper === child) helper = undefined;
    for (const [id, p] of pending) {
      pending.delete(id);
      if (!p.proc) p.reject(new Error('the process helper exited before starting the process'));
      else p.proc.lost = true;
    }
  });
  // A dead helper shows as its exit (above), not as errors on the way to it.
  child.once('error', () => undefined);
  child.stdin!.on('error', () => undefined);
  // Neither the helper nor its pipes keep the worker alive: the activities waiting on them do.
  child.unref();
  for (const stream of [child.stdin, child.stdout]) (stream as unknown as { unref?: () => void } | null)?.unref?.();
  return child;
}

function onReply(reply: Reply): void {
  const p = pending.get(reply.id);
  if (!p) return;
  if (reply.error !== undefined) {
    pending.delete(reply.id);
    if (p.proc) p.proc.lost = true;
    else p.reject(new Error(reply.error));
  } else if (reply.pid !== undefined) {
    p.proc = new SpawnedProcess(reply.pid);
    p.resolve(p.proc);
  } else if (p.proc) {
    pending.delete(reply.id);
    p.proc.exitCode = reply.code ?? null;
    p.proc.signalCode = reply.signal ?? null;
    p.proc.emit('exit', p.proc.exitCode, p.proc.signalCode);
  }
}

/** Starts the helper now, so the first step does not wait for a node process to start. */
export function warmUpSpawner(): void {
  helper ??= startHelper();
}

/** Spawns `file` detached (own session, no stdio) through the helper. */
export function spawnDetached(file: string, args: string[], env: Record<string, string>): Promise<SpawnedProcess> {
  helper ??= startHelper();
  const id = nextId++;
  const request = `${JSON.stringify({ id, file, args, env })}\n`;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    helper!.stdin!.write(request);
  });
}
