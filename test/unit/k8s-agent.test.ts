// The agent protocol end to end on loopback: a producer's output-streamer serves a declared
// output as a tar stream, a consumer's input-fetcher pulls it with the build token.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';
import { fetchInputs, serve } from '../../agent/causeway-agent';

const token = 'a'.repeat(64);
let producer: string;
let consumer: string;
let server: http.Server;
let done: Promise<void>;
let base: string;

beforeAll(async () => {
  producer = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-producer-'));
  consumer = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-consumer-'));
  fs.mkdirSync(path.join(producer, 'out', 'sub'), { recursive: true });
  fs.writeFileSync(path.join(producer, 'out', 'a.txt'), 'hello\n');
  fs.writeFileSync(path.join(producer, 'out', 'sub', 'b.bin'), Buffer.from([0, 1, 2, 255]));
  fs.writeFileSync(path.join(producer, 'secret.txt'), 'not an output\n');
  // What a hostile task leaves in its outputs: symlinks out of them, and an output that is a symlink to /.
  fs.symlinkSync('../secret.txt', path.join(producer, 'out', 'escape'));
  fs.symlinkSync('/etc/hostname', path.join(producer, 'out', 'absolute'));
  fs.symlinkSync('sub/b.bin', path.join(producer, 'out', 'inner'));
  fs.symlinkSync('/', path.join(producer, 'rooted'));
  const outputs = [
    { name: 'binaries', path: 'out' },
    { name: 'rooted', path: 'rooted' },
  ];
  ({ server, done } = await serve({ workdir: producer, token, outputs, port: 0, host: '127.0.0.1' }));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(() => {
  server.close();
  fs.rmSync(producer, { recursive: true, force: true });
  fs.rmSync(consumer, { recursive: true, force: true });
});

test('the fetcher pulls a declared output into its input path and creates the other directories', async () => {
  await fetchInputs({
    workdir: consumer,
    token,
    inputs: [{ name: 'in', path: 'input', url: `${base}/artifacts/out` }],
    mkdirs: ['outputs/o', '.cache'],
  });
  expect(fs.readFileSync(path.join(consumer, 'input', 'a.txt'), 'utf8')).toBe('hello\n');
  expect([...fs.readFileSync(path.join(consumer, 'input', 'sub', 'b.bin'))]).toEqual([0, 1, 2, 255]);
  expect(fs.statSync(path.join(consumer, 'outputs', 'o')).isDirectory()).toBe(true);
  expect(fs.statSync(path.join(consumer, '.cache')).isDirectory()).toBe(true);
});

test('the streamer answers health without a token, and refuses a bad token or anything not declared', async () => {
  expect((await fetch(`${base}/healthz`)).status).toBe(200);
  expect((await fetch(`${base}/artifacts/out`)).status).toBe(401);
  expect((await fetch(`${base}/artifacts/out`, { headers: { authorization: `Bearer ${'b'.repeat(64)}` } })).status).toBe(401);
  const auth = { authorization: `Bearer ${token}` };
  expect((await fetch(`${base}/artifacts/secret.txt`, { headers: auth })).status).toBe(404);
  expect((await fetch(`${base}/artifacts/..%2Fsecret.txt`, { headers: auth })).status).toBe(404);
  await expect(
    fetchInputs({
      workdir: consumer,
      token: 'wrong',
      inputs: [{ name: 'in', path: 'x', url: `${base}/artifacts/out` }],
      mkdirs: [],
      retryMs: 0,
    }),
  ).rejects.toThrow(/input in: .*HTTP 401/);
});

test('?file= answers one file of a declared output, and 404 names what is missing', async () => {
  const auth = { authorization: `Bearer ${token}` };
  const one = await fetch(`${base}/artifacts/out?file=sub%2Fb.bin`, { headers: auth });
  expect(one.status).toBe(200);
  expect(one.headers.get('content-type')).toBe('application/octet-stream');
  expect([...new Uint8Array(await one.arrayBuffer())]).toEqual([0, 1, 2, 255]);
  const missing = await fetch(`${base}/artifacts/out?file=ci%2Ftask.yml`, { headers: auth });
  expect([missing.status, await missing.text()]).toEqual([404, 'no file ci/task.yml in output out\n']);
  expect((await fetch(`${base}/artifacts/out?file=sub`, { headers: auth })).status).toBe(404); // a directory is not a file
  expect((await fetch(`${base}/artifacts/out?file=..%2Fsecret.txt`, { headers: auth })).status).toBe(400);
  expect((await fetch(`${base}/artifacts/out?file=a.txt`)).status).toBe(401);
  expect((await fetch(`${base}/artifacts/secret.txt?file=x`, { headers: auth })).status).toBe(404);
});

test('a symlink out of an output is refused; one inside it is followed', async () => {
  const auth = { authorization: `Bearer ${token}` };
  const escape = await fetch(`${base}/artifacts/out?file=escape`, { headers: auth });
  expect([escape.status, await escape.text()]).toEqual([400, 'file escape is a symlink that leaves output out\n']);
  expect((await fetch(`${base}/artifacts/out?file=absolute`, { headers: auth })).status).toBe(400);
  const inner = await fetch(`${base}/artifacts/out?file=inner`, { headers: auth });
  expect([...new Uint8Array(await inner.arrayBuffer())]).toEqual([0, 1, 2, 255]);
  const rooted = await fetch(`${base}/artifacts/rooted`, { headers: auth });
  expect([rooted.status, await rooted.text()]).toEqual([400, 'output directory rooted is a symlink that leaves the work directory\n']);
  expect((await fetch(`${base}/artifacts/rooted?file=etc%2Fhostname`, { headers: auth })).status).toBe(400);
});

test('the fetcher’s error carries the server’s one-line reason', async () => {
  await expect(
    fetchInputs({
      workdir: consumer,
      token,
      inputs: [{ name: 'in', path: 'z', url: `${base}/artifacts/undeclared` }],
      mkdirs: [],
      retryMs: 0,
    }),
  ).rejects.toThrow(/^input in: .*\/artifacts\/undeclared: HTTP 404: no such output$/);
});

test('the fetcher retries while the producer is not listening yet, then gives up with the reason', async () => {
  await expect(
    fetchInputs({
      workdir: consumer,
      token,
      inputs: [{ name: 'late', path: 'y', url: 'http://127.0.0.1:1/artifacts/out' }],
      mkdirs: [],
      retryMs: 300,
    }),
  ).rejects.toThrow(/input late: http:\/\/127\.0\.0\.1:1\/artifacts\/out: /);
});

test('the stream (GNU tar) keeps modes and inner symlinks, and node-tar reads it as `-o` exports do', async () => {
  fs.writeFileSync(path.join(producer, 'out', 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
  try {
    await fetchInputs({ workdir: consumer, token, inputs: [{ name: 'in', path: 'modes', url: `${base}/artifacts/out` }], mkdirs: [] });
    expect(fs.statSync(path.join(consumer, 'modes', 'run.sh')).mode & 0o111).toBe(0o111);
    expect(fs.readlinkSync(path.join(consumer, 'modes', 'inner'))).toBe('sub/b.bin');
    const res = await fetch(`${base}/artifacts/out`, { headers: { authorization: `Bearer ${token}` } });
    const dest = path.join(consumer, 'node-tar');
    fs.mkdirSync(dest);
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), tar.x({ cwd: dest }));
    expect(fs.readFileSync(path.join(dest, 'a.txt'), 'utf8')).toBe('hello\n');
  } finally {
    fs.rmSync(path.join(producer, 'out', 'run.sh'));
  }
});

test('an answer cut mid-stream fails the fetcher, not a short input', async () => {
  const whole = fs.readFileSync(path.join(producer, 'out', 'a.txt'));
  const cut = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/x-tar' });
    const header = Buffer.alloc(512);
    header.write('a.txt');
    res.write(header);
    res.write(whole);
    setTimeout(() => res.destroy(), 50);
  });
  await new Promise<void>((r) => cut.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${(cut.address() as { port: number }).port}/artifacts/out`;
    await expect(
      fetchInputs({ workdir: consumer, token, inputs: [{ name: 'cut', path: 'cut', url }], mkdirs: [], retryMs: 0 }),
    ).rejects.toThrow(/^input cut: http:\/\/127\.0\.0\.1:\d+\/artifacts\/out: /);
  } finally {
    cut.close();
  }
});

/** The processes whose parent is pid, with their command lines (from /proc). */
function childrenOf(pid: number): { pid: number; cmd: string[] }[] {
  const found: { pid: number; cmd: string[] }[] = [];
  for (const entry of fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== pid) continue;
      found.push({ pid: Number(entry), cmd: fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0') });
    } catch {
      // it exited while we looked
    }
  }
  return found;
}

test('a producer whose tar is killed mid-stream fails the consumer’s fetch, naming the input and the cut', async () => {
  // 1 GiB of holes: tar reads it as zeros for long enough to be killed while it streams.
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-killed-'));
  fs.mkdirSync(path.join(work, 'big'));
  fs.writeFileSync(path.join(work, 'big', 'blob'), '');
  fs.truncateSync(path.join(work, 'big', 'blob'), 1 << 30);
  const producer = await serve({ workdir: work, token, outputs: [{ name: 'big', path: 'big' }], port: 0, host: '127.0.0.1' });
  try {
    const url = `http://127.0.0.1:${(producer.server.address() as { port: number }).port}/artifacts/big`;
    const fetching = fetchInputs({ workdir: consumer, token, inputs: [{ name: 'big', path: 'big', url }], mkdirs: [], retryMs: 0 }).then(
      () => new Error('the fetch succeeded'),
      (err: Error) => err,
    );
    // The producer's tar (a child of its tar-stream or, built without one, of this process),
    // once the consumer has unpacked a first part.
    let tar: number | undefined;
    while (tar === undefined) {
      await new Promise((r) => setTimeout(r, 5));
      if (!fs.existsSync(path.join(consumer, 'big', 'blob'))) continue;
      const mine = childrenOf(process.pid);
      const parents = [process.pid, ...mine.filter((p) => p.cmd[1] === 'send').map((p) => p.pid)];
      tar = parents.flatMap((p) => childrenOf(p)).find((c) => path.basename(c.cmd[0]) === 'tar' && c.cmd[1] === '-c')?.pid;
    }
    process.kill(tar, 'SIGKILL');
    // Through agent/tar-stream (npm run build), or through Node when it was built without a C compiler.
    const spliced = fs.existsSync(path.join(__dirname, '..', '..', 'dist', 'agent', 'tar-stream'));
    expect((await fetching).message).toMatch(
      new RegExp(
        `^input big: http://127\\.0\\.0\\.1:\\d+/artifacts/big: ${spliced ? 'the answer ended after \\d+ bytes .*cut' : 'tar -x exited 2'}`,
      ),
    );
  } finally {
    producer.server.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
});

test('POST /done with the token ends the streamer', async () => {
  expect((await fetch(`${base}/done`, { method: 'POST' })).status).toBe(401);
  expect((await fetch(`${base}/done`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
  await expect(done).resolves.toBeUndefined();
});
