// causeway-agent: the input-fetcher and output-streamer of kubernetes-runtime step pods
// (docs/kubernetes.md, "Agent protocol"). Built into the image by agent/Dockerfile.
//
//   causeway-agent fetch   init container: pull every input (tar over HTTP) into the work dir
//   causeway-agent serve   producer pods: serve the declared outputs as tar streams (or one
//                          file of an output, for the worker reading a task or service file)
//   causeway-agent probe   service pods with several ports: GET /ready answers 200 once every
//                          declared port accepts connections (the pod's readiness)
//
// Configuration comes from the environment the pod builder sets: CAUSEWAY_WORKDIR,
// CAUSEWAY_INPUTS / CAUSEWAY_MKDIRS (fetch), CAUSEWAY_OUTPUTS / CAUSEWAY_PORT (serve), and
// CAUSEWAY_ARTIFACT_TOKEN (both; from the build's Secret).
//
// The tar streams are packed and unpacked by GNU tar (in the agent and worker images): node-tar
// through fetch's web streams moved 25 MB/s pod to pod where `tar c | tar x` moves 135 MB/s in a
// pod (BENCHMARKS.md, k8s-steps). The bytes go between tar and the connection through
// agent/tar-stream.c (splice(2), chunked framing), not through Node: each Node hop cost about
// what one tar does. Node speaks the HTTP around them. Built without a C compiler, the agent
// pipes tar through Node as before.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { timingSafeEqual } from 'node:crypto';

export interface AgentEnv {
  workdir: string;
  token: string;
}

/** A relative path that stays inside root, or an error. */
function inside(root: string, rel: string): string {
  const target = path.resolve(root, rel);
  if (target !== root && !target.startsWith(root + path.sep)) throw new Error(`path ${rel} leaves ${root}`);
  return target;
}

/**
 * `target` (inside `root` by name) with every symlink resolved, or an error when the real path
 * leaves the real root: a task can leave a symlink to any file of the pod in its output.
 */
function realInside(root: string, target: string): string {
  const realRoot = fs.realpathSync(root);
  const real = fs.realpathSync(target);
  if (real !== realRoot && !real.startsWith(realRoot + path.sep)) throw new Error(`${target} is a symlink to ${real}, outside ${root}`);
  return real;
}

/** Whether an Authorization header carries the bearer token (constant time). */
export function sameToken(given: string | undefined, token: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(`Bearer ${token}`);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * tar's blocking factor (512-byte blocks per write): 128 KiB records instead of the default
 * 10 KiB, so a 200 MB artifact crosses the pipe, the agent and the socket in 1,600 writes, not 20,000.
 */
const TAR_BLOCKING = '256';

/**
 * agent/tar-stream, built by `npm run build` beside this file's compiled form (dist/agent/, the
 * agent image's /agent); undefined when it was built without a C compiler.
 */
const TAR_STREAM = [path.join(__dirname, 'tar-stream'), path.join(__dirname, '..', 'dist', 'agent', 'tar-stream')].find((f) =>
  fs.existsSync(f),
);

/** tar-stream's exit codes (agent/tar-stream.c). */
const STREAM_STATUS = 64;
const STREAM_NO_ANSWER = 66;

interface StreamExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Up to 8 KiB of its stdout (the status and body of an answer other than 200). */
  stdout: string;
  /** Its last stderr line: tar's, or its own reason. */
  last: string;
}

/**
 * Runs tar-stream MODE -- tar ARGS with `socket` as its fd 3 (Node stops reading it: spawn does).
 * Not as its stdin or stdout: libuv makes a child's fds 0-2 blocking, and the flag is the open
 * socket's, shared with Node's event loop.
 */
function runStream(helper: string, mode: 'send' | 'receive', args: string[], socket: net.Socket): Promise<StreamExit> {
  return new Promise((resolve, reject) => {
    const child = spawn(helper, [mode, '--', 'tar', ...args], { stdio: ['ignore', 'pipe', 'pipe', socket] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout = (stdout + d.toString()).slice(0, 8192)));
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    child.once('error', (err) => reject(new Error(`${helper}: ${err.message} (npm run build makes it)`)));
    child.once('close', (code, signal) => resolve({ code, signal, stdout, last: stderr.trim().split('\n').pop() ?? '' }));
  });
}

/**
 * Runs GNU tar with args while `io` wires its stdin or stdout to a stream; resolves when both
 * are done. A tar that fails names itself with its last stderr line; a stream that fails kills
 * tar and is the error.
 */
async function runTar(args: string[], io: (child: ChildProcessByStdio<Writable, Readable, Readable>) => Promise<void>): Promise<void> {
  const child = spawn('tar', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const exited = new Promise<void>((resolve, reject) => {
    child.once('error', (err) => reject(new Error(`tar: ${err.message} (GNU tar must be on PATH)`)));
    child.once('close', (code, signal) => {
      const last = stderr.trim().split('\n').pop();
      if (code === 0) resolve();
      else reject(new Error(`tar ${args[0]} exited ${code ?? signal}${last ? `: ${last}` : ''}`));
    });
  });
  const [tarDone, streamDone] = await Promise.allSettled([
    exited,
    io(child).catch((err: Error) => {
      child.kill();
      throw err;
    }),
  ]);
  // tar's own failure (a code, not our kill) explains a broken pipe better than the pipe does.
  if (tarDone.status === 'rejected' && child.signalCode === null) throw tarDone.reason;
  if (streamDone.status === 'rejected') throw streamDone.reason;
  if (tarDone.status === 'rejected') throw tarDone.reason;
}

/**
 * Answers with a tar stream of a directory (the protocol's artifact format). Owners are not
 * sent (the consumer owns what it unpacks). A tar that fails mid-stream cuts the connection
 * before the end chunk, so the consumer sees a truncated answer, never a short archive as a
 * whole one.
 */
export function sendDirectory(res: http.ServerResponse, dir: string): void {
  const args = ['-c', '-b', TAR_BLOCKING, '-f', '-', '-C', dir, '--owner=0', '--group=0', '--numeric-owner', '.'];
  const socket = res.socket;
  if (TAR_STREAM && socket) {
    const helper = TAR_STREAM;
    // The head goes on the socket itself, before tar-stream writes the chunks after it; the
    // connection closes after the answer, which is no longer Node's to frame.
    const head = 'HTTP/1.1 200 OK\r\ncontent-type: application/x-tar\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n';
    socket.write(head, (err) => {
      if (err) return socket.destroy();
      runStream(helper, 'send', args, socket).then(
        (exit) => (exit.code === 0 ? socket.destroySoon() : socket.destroy()),
        () => socket.destroy(),
      );
    });
    return;
  }
  res.writeHead(200, { 'content-type': 'application/x-tar' });
  runTar(args, (child) => {
    child.stdin.end();
    return pipeline(child.stdout, res);
  }).catch(() => res.destroy());
}

/** Answers with one regular file of an output directory; 404 naming what is missing otherwise. */
function sendFile(res: http.ServerResponse, dir: string, output: string, rel: string): void {
  let file: string;
  try {
    file = inside(dir, rel);
  } catch {
    res.writeHead(400).end(`file ${rel} leaves output ${output}\n`);
    return;
  }
  const st = fs.statSync(file, { throwIfNoEntry: false });
  if (st) {
    try {
      file = realInside(dir, file);
    } catch {
      res.writeHead(400).end(`file ${rel} is a symlink that leaves output ${output}\n`);
      return;
    }
  }
  if (!st?.isFile()) {
    res.writeHead(404).end(`no file ${rel} in output ${output}\n`);
    return;
  }
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': st.size });
  pipeline(fs.createReadStream(file), res).catch(() => res.destroy());
}

/**
 * Serves `GET /healthz`, `GET /artifacts/<output path>` (bearer token; a tar stream of the
 * directory, or with `?file=<path in it>` that one file's bytes) and `POST /done` (bearer
 * token; resolves `done`). Only declared output paths are served. Returns the server
 * (listening) and a promise of the `/done` request.
 */
export function serve(
  env: AgentEnv & { outputs: { name: string; path: string }[]; port: number; host?: string },
): Promise<{ server: http.Server; done: Promise<void> }> {
  const allowed = new Set(env.outputs.map((o) => o.path.replace(/^\/+|\/+$/g, '')));
  let finish: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://agent');
    if (req.method === 'GET' && url.pathname === '/healthz') {
      res.writeHead(200).end('ok\n');
      return;
    }
    if (!sameToken(req.headers.authorization, env.token)) {
      res.writeHead(401).end('bad or missing token\n');
      return;
    }
    if (req.method === 'POST' && url.pathname === '/done') {
      res.writeHead(200).end('bye\n');
      finish();
      return;
    }
    const rel = decodeURIComponent(url.pathname.replace(/^\/artifacts\//, '')).replace(/^\/+|\/+$/g, '');
    if (req.method !== 'GET' || !url.pathname.startsWith('/artifacts/') || !allowed.has(rel)) {
      res.writeHead(404).end('no such output\n');
      return;
    }
    let dir = inside(env.workdir, rel);
    if (!fs.existsSync(dir)) {
      res.writeHead(404).end(`output directory ${rel} missing\n`);
      return;
    }
    try {
      // A task that replaced its output directory by a symlink to / must not get / served.
      dir = realInside(env.workdir, dir);
    } catch {
      res.writeHead(400).end(`output directory ${rel} is a symlink that leaves the work directory\n`);
      return;
    }
    const file = url.searchParams.get('file');
    if (file !== null) sendFile(res, dir, rel, file);
    else sendDirectory(res, dir);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(env.port, env.host ?? '0.0.0.0', () => resolve({ server, done }));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The first line of an error answer's body, as `: text`, or nothing. */
export async function reason(res: Response): Promise<string> {
  return firstLine(await res.text().catch(() => ''));
}

function firstLine(body: string): string {
  const text = body.split('\n')[0].trim().slice(0, 300);
  return text ? `: ${text}` : '';
}

/** GET url with the bearer token; the answer's head (its body not read yet). */
function get(url: string, token: string): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    http.get(url, { headers: { authorization: `Bearer ${token}` } }, resolve).once('error', reject);
  });
}

async function readBody(res: http.IncomingMessage): Promise<string> {
  let body = '';
  for await (const chunk of res) body += String(chunk);
  return body;
}

/** tar's arguments to unpack a stream into dest. */
function unpackArgs(dest: string): string[] {
  // --ignore-zeros: tar reads to the end of the stream instead of stopping at the archive's
  // end marker, which would close its stdin before the record's padding and the HTTP end.
  return ['-x', '-b', TAR_BLOCKING, '--ignore-zeros', '-f', '-', '-C', dest, '--no-same-owner'];
}

/**
 * One attempt at an input: `status` 200 once it is unpacked in dest; another status or none
 * (no answer) with the reason, for the caller to retry or report. Rejects when the answer
 * was 200 but its stream failed (cut, or tar failed on it): not worth retrying.
 */
type Pulled = { status?: number; why: string };

async function pullThroughNode(url: string, token: string, dest: string): Promise<Pulled> {
  let res: http.IncomingMessage;
  try {
    res = await get(url, token);
  } catch (err) {
    return { why: (err as Error).message };
  }
  // The server's one-line reason (e.g. which upload is missing) goes into ours.
  if (res.statusCode !== 200)
    return { status: res.statusCode, why: `HTTP ${res.statusCode}${firstLine(await readBody(res).catch(() => ''))}` };
  const gzip = res.headers['content-encoding'] === 'gzip' ? ['-z'] : [];
  await runTar([...unpackArgs(dest), ...gzip], (child) => pipeline(res, child.stdin));
  return { status: 200, why: '' };
}

/** A connected socket that Node has not read from (tar-stream reads the answer from its first byte). */
function connect(u: URL): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 80) });
    socket.pause();
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      // Its failures from here on are tar-stream's to report.
      socket.on('error', () => undefined);
      resolve(socket);
    });
  });
}

async function pullSpliced(helper: string, url: string, token: string, dest: string): Promise<Pulled> {
  const u = new URL(url);
  if (u.protocol !== 'http:') throw new Error(`${url}: only http:// inputs are fetched`);
  let socket: net.Socket;
  try {
    socket = await connect(u);
  } catch (err) {
    return { why: (err as Error).message };
  }
  let exit: StreamExit;
  try {
    const request = `GET ${u.pathname}${u.search} HTTP/1.1\r\nhost: ${u.host}\r\nauthorization: Bearer ${token}\r\nconnection: close\r\n\r\n`;
    await new Promise<void>((resolve, reject) => socket.write(request, (err) => (err ? reject(err) : resolve())));
    exit = await runStream(helper, 'receive', unpackArgs(dest), socket);
  } catch (err) {
    return { why: (err as Error).message };
  } finally {
    socket.destroy();
  }
  if (exit.code === 0) return { status: 200, why: '' };
  if (exit.code === STREAM_STATUS) {
    const [status, ...body] = exit.stdout.split('\n');
    return { status: Number(status), why: `HTTP ${status}${firstLine(body.join('\n'))}` };
  }
  if (exit.code === STREAM_NO_ANSWER) return { why: exit.last };
  // tar's own failure (its code, its last stderr line) or tar-stream's (a cut stream).
  throw new Error(
    exit.last.startsWith('tar-stream: ')
      ? exit.last.slice('tar-stream: '.length)
      : `tar -x exited ${exit.code ?? exit.signal}${exit.last ? `: ${exit.last}` : ''}`,
  );
}

/**
 * Creates the directories the task expects, then pulls each input's tar stream into
 * WORKDIR/<path>, retrying connection errors and 5xx for up to retryMs (a producer's
 * streamer may still be starting). Throws with a one-line reason otherwise.
 */
export async function fetchInputs(
  env: AgentEnv & { inputs: { name: string; path: string; url: string }[]; mkdirs: string[]; retryMs?: number },
): Promise<void> {
  // Writable by any uid: a task whose image names its own non-root user (and no run.user) must
  // write its outputs and caches; the pod's work volume is the build's alone.
  for (const d of env.mkdirs) {
    fs.mkdirSync(inside(env.workdir, d), { recursive: true });
    fs.chmodSync(inside(env.workdir, d), 0o777);
  }
  for (const input of env.inputs) {
    const dest = inside(env.workdir, input.path);
    fs.mkdirSync(dest, { recursive: true });
    const deadline = Date.now() + (env.retryMs ?? 60_000);
    for (let delay = 100; ; delay = Math.min(2000, delay * 2)) {
      const helper = TAR_STREAM;
      const { status, why } = await (
        helper ? pullSpliced(helper, input.url, env.token, dest) : pullThroughNode(input.url, env.token, dest)
      ).catch((err: Error) => {
        throw new Error(`input ${input.name}: ${input.url}: ${err.message}`);
      });
      if (status === 200) break;
      const retryable = status === undefined || status >= 500;
      if (!retryable || Date.now() > deadline) throw new Error(`input ${input.name}: ${input.url}: ${why}`);
      await sleep(delay);
    }
  }
}

/** Whether host:port accepts a TCP connection within timeoutMs; the refusal's reason otherwise. */
function tryPort(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    socket.once('connect', () => {
      socket.destroy();
      resolve(undefined);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/**
 * Serves `GET /ready` for a service's pod: 200 when every port accepts a TCP connection at host
 * (the pod's IP, as the kubelet's tcpSocket probe dials), else 503 naming the ones that do not.
 * Kubernetes gives a container one probe of each kind, so this one probe checks them all.
 * `last()` is the latest verdict, for the container's termination message.
 */
export function probePorts(o: {
  host: string;
  ports: { name: string; number: number }[];
  port: number;
  listen?: string;
}): Promise<{ server: http.Server; last: () => string }> {
  let last = 'not probed yet';
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/ready') {
      res.writeHead(404).end('GET /ready\n');
      return;
    }
    void Promise.all(o.ports.map(async (p) => ({ p, why: await tryPort(o.host, p.number, 1000) }))).then((results) => {
      const closed = results.filter((r) => r.why !== undefined).map((r) => `${r.p.name} ${r.p.number} (${r.why})`);
      last = closed.length ? `ports not accepting connections at ${o.host}: ${closed.join(', ')}` : 'every port accepts connections';
      res.writeHead(closed.length ? 503 : 200).end(`${last}\n`);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.listen ?? '0.0.0.0', () => resolve({ server, last: () => last }));
  });
}

function required(name: string): string {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`${name} is not set`);
  return v;
}

async function main(): Promise<void> {
  const cmd = process.argv[2];
  if (cmd === 'probe') {
    const { last } = await probePorts({
      host: required('CAUSEWAY_PROBE_HOST'),
      ports: JSON.parse(required('CAUSEWAY_PROBE_PORTS')),
      port: Number(process.env.CAUSEWAY_PORT ?? 7790),
    });
    // Killed by its failed startup probe: the kubelet reports this file as the container's message.
    process.once('SIGTERM', () => {
      try {
        fs.writeFileSync('/dev/termination-log', last());
      } finally {
        process.exit(1);
      }
    });
    return;
  }
  const env = { workdir: path.resolve(required('CAUSEWAY_WORKDIR')), token: required('CAUSEWAY_ARTIFACT_TOKEN') };
  if (cmd === 'fetch') {
    await fetchInputs({
      ...env,
      inputs: JSON.parse(process.env.CAUSEWAY_INPUTS ?? '[]'),
      mkdirs: JSON.parse(process.env.CAUSEWAY_MKDIRS ?? '[]'),
    });
    return;
  }
  if (cmd === 'serve') {
    const { server, done } = await serve({
      ...env,
      outputs: JSON.parse(required('CAUSEWAY_OUTPUTS')),
      port: Number(process.env.CAUSEWAY_PORT ?? 7788),
    });
    process.once('SIGTERM', () => server.close(() => process.exit(0)));
    await done;
    server.close();
    return;
  }
  throw new Error('usage: causeway-agent fetch|serve|probe');
}

if (require.main === module) {
  main().catch((err: Error) => {
    process.stderr.write(`causeway-agent: ${err.message}\n`);
    process.exit(1);
  });
}
