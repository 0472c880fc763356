// A pipeline through crashes: the worker process is SIGKILLed, and Temporal and NATS are
// each restarted, during a check and during a triggered build, while a `version: every` job
// builds each version of a resource. No version may be lost, no version built twice, no
// build number given twice, and each build's task runs exactly once.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { restartComponent, startStackOnFreePorts, stopStack, type StackInfo } from '../../cli/dev/stack';
import { waitFor } from '../workflows/harness';

jest.setTimeout(600_000);

const BIN = path.resolve(__dirname, '../../bin/causeway');
const WORKER = path.resolve(__dirname, '../../dist/workers/main.js');
const QUEUE = 'pipeline-chaos';
const marker = `pipeline-chaos-${randomUUID()}`;

let home: string;
let dir: string;
let stack: StackInfo;
let worker: ChildProcess | undefined;

const env = () => ({
  ...process.env,
  TEMPORAL_ADDRESS: stack.temporal.address,
  NATS_URL: stack.nats.url,
  CAUSEWAY_HOME: home,
  CAUSEWAY_TASK_QUEUE: QUEUE,
  NO_COLOR: '1',
});

function startWorker(): ChildProcess {
  const log = fs.openSync(path.join(home, 'logs', 'pipeline-chaos-worker.log'), 'a');
  const child = spawn(process.execPath, [WORKER], {
    env: { ...env(), CAUSEWAY_WORKER_NAME: 'pipeline-chaos', CAUSEWAY_LOG_LEVEL: 'warn' },
    stdio: ['ignore', log, log],
  });
  fs.closeSync(log);
  return child;
}

function cli(...args: string[]): { code: number; stdout: string; stderr: string } {
  try {
    const stdout = execFileSync(BIN, args, {
      cwd: dir,
      env: env(),
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { code: 0, stdout, stderr: '' };
  } catch (err) {
    const e = err as { status: number; stdout: string; stderr: string };
    return { code: e.status, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A resource type as a directory: versions are the lines of `versions`; check takes 3 s and says when it starts. */
function writeType(): void {
  const type = path.join(dir, 'counter');
  fs.mkdirSync(type);
  const node = (body: string) =>
    `#!${process.execPath}\nconst fs = require('fs');\nconst req = JSON.parse(fs.readFileSync(0, 'utf8'));\n${body}\n`;
  fs.writeFileSync(
    path.join(type, 'check'),
    // Each worker process's checks run under a uid of their own: a file an earlier one wrote is replaced, not written into.
    node(`fs.rmSync(req.source.dir + '/check-started', { force: true });
fs.writeFileSync(req.source.dir + '/check-started', String(Date.now()));
setTimeout(() => {
  const lines = fs.readFileSync(req.source.dir + '/versions', 'utf8').split('\\n').filter(Boolean);
  process.stdout.write(JSON.stringify(lines.map((v) => ({ v }))));
}, 3000);`),
    { mode: 0o755 },
  );
  fs.writeFileSync(
    path.join(type, 'in'),
    node(`fs.writeFileSync(process.argv[2] + '/v', req.version.v);
process.stdout.write(JSON.stringify({ version: req.version, metadata: [] }));`),
    { mode: 0o755 },
  );
  fs.writeFileSync(path.join(type, 'out'), node(`process.exit(1);`), { mode: 0o755 });
}

beforeAll(async () => {
  if (!fs.existsSync(WORKER)) throw new Error('run `npm run build` first (npm test does)');
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-pipeline-chaos-'));
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-pipeline-chaos-work-'));
  // The check runs under a uid of its own on a root worker and says here when it starts.
  fs.chmodSync(dir, 0o777);
  stack = await startStackOnFreePorts({ home, persistent: true, startWorker: false, log: () => undefined });
  writeType();
  fs.writeFileSync(path.join(dir, 'versions'), '');
  fs.writeFileSync(path.join(dir, 'runs'), '');
  // Tasks run as a user of their own on the local runtime: they append to it.
  fs.chmodSync(path.join(dir, 'runs'), 0o666);
});

afterAll(async () => {
  worker?.kill('SIGKILL');
  await stopStack(home);
  fs.rmSync(home, { recursive: true, force: true });
  fs.rmSync(dir, { recursive: true, force: true });
});

const addVersion = (v: string) => fs.appendFileSync(path.join(dir, 'versions'), `${v}\n`);
const runs = () => fs.readFileSync(path.join(dir, 'runs'), 'utf8').split('\n').filter(Boolean);

function builds(): { number: number; status: string }[] {
  const r = cli('jobs', '-p', 'chaos', '--json');
  if (r.code !== 0) return [];
  return (JSON.parse(r.stdout) as { builds: { number: number; status: string }[] }[])[0].builds;
}

test('no version lost and none built twice through worker kills and Temporal and NATS restarts', async () => {
  fs.writeFileSync(
    path.join(dir, 'chaos.yml'),
    `
resource_types:
- name: counter
  type: directory
  source: {path: counter}
resources:
- name: src
  type: counter
  check_every: 1s
  source: {dir: ${dir}}
jobs:
- name: each
  max_in_flight: 1
  plan:
  - get: src
    version: every
    trigger: true
  - task: record
    config:
      platform: linux
      inputs: [{name: src}]
      run: {path: sh, args: [-c, 'echo "$(cat src/v)" >> ${dir}/runs; sleep 4 # ${marker}']}
`,
  );
  worker = startWorker();
  expect(cli('set-pipeline', '-n', '-p', 'chaos', '-c', path.join(dir, 'chaos.yml')).code).toBe(0);
  expect(cli('unpause-pipeline', '-p', 'chaos').code).toBe(0);

  // SIGKILL during a check: the check has started and has not answered.
  addVersion('1');
  fs.rmSync(path.join(dir, 'check-started'), { force: true });
  await waitFor('a check to start', () => fs.existsSync(path.join(dir, 'check-started')), 120_000);
  worker.kill('SIGKILL');
  await delay(500);
  worker = startWorker();

  // SIGKILL during a triggered build: its task is running.
  await waitFor('build 1 to run its task', () => runs().length === 1, 180_000);
  worker.kill('SIGKILL');
  addVersion('2');
  await delay(1000);
  worker = startWorker();

  // Temporal, then NATS, restart while build 2's task runs.
  await waitFor('build 2 to run its task', () => runs().length === 2, 180_000);
  await restartComponent(home, 'temporal');
  await restartComponent(home, 'nats');

  // Temporal, then NATS, restart while a check that finds version 3 runs.
  addVersion('3');
  for (const component of ['temporal', 'nats'] as const) {
    fs.rmSync(path.join(dir, 'check-started'), { force: true });
    await waitFor('a check to start', () => fs.existsSync(path.join(dir, 'check-started')), 120_000);
    await restartComponent(home, component);
  }

  await waitFor(
    'every version built',
    () => {
      const b = builds();
      return b.length === 3 && b.every((x) => x.status === 'succeeded');
    },
    300_000,
  );
  // Nothing more comes: a few more checks and scheduling passes.
  await delay(5000);
  expect(builds().map((b) => [b.number, b.status])).toEqual([
    [1, 'succeeded'],
    [2, 'succeeded'],
    [3, 'succeeded'],
  ]);
  expect(runs()).toEqual(['1', '2', '3']);
  const versions = JSON.parse(cli('resource-versions', '-r', 'chaos/src', '--json').stdout) as { id: number; version: { v: string } }[];
  expect(versions.map((v) => v.version.v)).toEqual(['3', '2', '1']);
  const newest = JSON.parse(cli('resource-versions', '-r', 'chaos/src', '-c', '2', '--json').stdout) as { version: { v: string } }[];
  expect(newest.map((v) => v.version.v)).toEqual(['3', '2']);
  expect(cli('destroy-pipeline', '-n', '-p', 'chaos').code).toBe(0);
});
