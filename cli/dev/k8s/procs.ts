// Processes of the test/dev cluster: each in its own process group with its log in DIR/logs,
// readiness polled, stopped TERM then KILL. Shared by the control plane and the real node.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const READY_TIMEOUT_MS = 180_000;
const STOP_GRACE_MS = 3_000;

export function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** `NAME.key` and `NAME.crt` in `pki`, signed by the cluster CA there (ca.crt, ca.key) with the extensions in `ext`. */
export function signCertificate(pki: string, name: string, subj: string, ext: string): void {
  fs.writeFileSync(path.join(pki, `${name}.ext`), ext);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subj], pki);
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.crt`,
      '-days',
      '30',
      '-extfile',
      `${name}.ext`,
    ],
    pki,
  );
}

export interface Started {
  name: string;
  pid: number;
  log: string;
  exited: () => string | undefined;
}

export function startProcess(dir: string, name: string, command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Started {
  const log = path.join(dir, 'logs', `${name}.log`);
  fs.mkdirSync(path.dirname(log), { recursive: true });
  const fd = fs.openSync(log, 'a');
  // Own process group, so stopping it never signals the test runner and vice versa.
  const child = spawn(command, args, { stdio: ['ignore', fd, fd], detached: true, env });
  fs.closeSync(fd);
  child.unref();
  let exit: string | undefined;
  child.on('exit', (code, signal) => (exit = `${name} exited (${signal ?? code}); see ${log}`));
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  return { name, pid: child.pid, log, exited: () => exit };
}

export function tail(file: string, lines = 15): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export async function waitFor(
  what: string,
  proc: Started | undefined,
  check: () => Promise<boolean>,
  timeoutMs = READY_TIMEOUT_MS,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 50;
  for (;;) {
    const exited = proc?.exited();
    if (exited) throw new Error(`${exited}\n${tail(proc!.log)}`);
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what} not ready after ${timeoutMs / 1000}s${proc ? `\n${tail(proc.log)}` : ''}`);
    await sleep(delay);
    delay = Math.min(500, delay * 2);
  }
}

export interface Tls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  insecure?: boolean;
}

export function request(
  url: string,
  tls: Tls,
  method = 'GET',
  body?: string,
  contentType = 'application/json',
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.request(
      u,
      {
        method,
        ca: tls.ca,
        cert: tls.cert,
        key: tls.key,
        rejectUnauthorized: !tls.insecure,
        timeout: 5000,
        headers: body ? { 'content-type': contentType } : {},
      },
      (res) => {
        let data = '';
        res.on('data', (d: Buffer) => (data += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A killed process whose parent has exited stays a zombie, answering kill(0), until init reaps
  // it; some machines' init (a microVM's process_api) never does, and the dev worker's parent
  // (`dev up`) has exited. Dead is dead: the state letter after "(comm)" is Z.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return !fs.existsSync('/proc/self/stat');
  }
}

async function stopOne(pid: number): Promise<void> {
  if (!alive(pid)) return;
  try {
    process.kill(-pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + STOP_GRACE_MS;
  while (alive(pid) && Date.now() < deadline) await sleep(50);
  if (alive(pid)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

export async function stopProcesses(processes: { name: string; pid: number }[]): Promise<void> {
  // All at once: the data is thrown away, and a runner that dies in the middle of its
  // teardown (jest after an uncaught error) must not leave etcd running alone.
  await Promise.all(processes.map((p) => stopOne(p.pid)));
}
