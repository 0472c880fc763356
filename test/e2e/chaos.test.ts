// Crash recovery under fire: 20 builds (artifacts, in_parallel, a service) run while the worker process is killed with SIGKILL
// at random moments (10 times or more) and Temporal and NATS are each restarted once.
// Every build must end succeeded with its expected output, every step's and service's side
// effect must have happened exactly once, and no step or service process may remain.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import { awaitBuild, startBuild, type BuildOutcome } from '../../common/build-client';
import { restartComponent, startStackOnFreePorts, stopStack, type StackInfo } from '../../cli/dev/stack';
import { compilePlan } from '../../schemas';
import { causewayDataConverter, loadCodecKeys } from '../../common/codec';

const BUILDS = 20;
const MIN_KILLS = 10;
const WORKER = path.resolve(__dirname, '../../dist/workers/main.js');

let home: string;
let stack: StackInfo;
let connection: Connection;
let client: Client;
let worker: ChildProcess | undefined;
const marker = `chaos-${randomUUID()}`;

function startWorker(): ChildProcess {
  const log = fs.openSync(path.join(home, 'logs', 'chaos-worker.log'), 'a');
  const child = spawn(process.execPath, [WORKER], {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: stack.temporal.address,
      NATS_URL: stack.nats.url,
      CAUSEWAY_HOME: home,
      CAUSEWAY_WORKER_NAME: 'chaos',
      CAUSEWAY_TASK_QUEUE: 'chaos',
      CAUSEWAY_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', log, log],
  });
  fs.closeSync(log);
  return child;
}

function leftovers(): string[] {
  try {
    return execFileSync('pgrep', ['-af', marker]).toString().trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

beforeAll(async () => {
  if (!fs.existsSync(WORKER)) throw new Error('run `npm run build` first (npm test does)');
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-chaos-'));
  stack = await startStackOnFreePorts({ home, persistent: true, startWorker: false, log: () => undefined });
  connection = await Connection.connect({ address: stack.temporal.address });
  client = new Client({ connection, dataConverter: causewayDataConverter(loadCodecKeys({ home })) });
});

afterAll(async () => {
  worker?.kill('SIGKILL');
  await connection?.close();
  await stopStack(home);
  fs.rmSync(home, { recursive: true, force: true });
});

const plan = (counts: string) => `
plan:
- task: produce
  config:
    platform: linux
    outputs: [{name: art}]
    run: {path: sh, args: [-c, 'echo produce >> ${counts}; sleep 2; echo payload > art/data # ${marker}']}
- in_parallel:
  - task: left
    config:
      platform: linux
      inputs: [{name: art}]
      outputs: [{name: l}]
      run: {path: sh, args: [-c, 'echo left >> ${counts}; sleep 3; cp art/data l/data # ${marker}']}
  - task: right
    config:
      platform: linux
      run: {path: sh, args: [-c, 'echo right >> ${counts}; sleep 2; python3 -c "import urllib.request as u; u.urlopen(\\"http://$WEB_SERVICE_HOST:$WEB_SERVICE_PORT/\\")" # ${marker}']}
  services:
  - name: web
    grace_period: 2s
    config:
      ports: [8080]
      run: {path: sh, args: [-c, 'echo web >> ${counts}; exec python3 -m http.server 8080 --bind "$WEB_SERVICE_HOST" # ${marker}']}
- task: check
  config:
    platform: linux
    inputs: [{name: l}]
    run: {path: sh, args: [-c, 'echo check >> ${counts}; test "$(cat l/data)" = payload # ${marker}']}
`;

test(
  'builds finish exactly once through worker kills and Temporal and NATS restarts',
  async () => {
    worker = startWorker();
    const countsDir = path.join(home, 'counts');
    fs.mkdirSync(countsDir);
    // Steps run under their build's uid (docs/security.md) and append their counts here.
    fs.chmodSync(countsDir, 0o1777);
    const handles = await Promise.all(
      Array.from({ length: BUILDS }, (_, i) =>
        startBuild(client, {
          plan: compilePlan({ file: `chaos-${i}.yml`, text: plan(path.join(countsDir, String(i))) }),
          taskQueue: 'chaos',
        }),
      ),
    );
    const outcomes: (BuildOutcome | undefined)[] = new Array(BUILDS).fill(undefined);
    const all = Promise.all(handles.map((h, i) => awaitBuild(h).then((o) => (outcomes[i] = o))));

    let kills = 0;
    let restartedTemporal = false;
    let restartedNats = false;
    // Kill at random moments, giving the worker time to come back and make progress in between.
    while (kills < MIN_KILLS) {
      await delay(2500 + Math.random() * 3000);
      worker.kill('SIGKILL');
      kills += 1;
      if (kills === 4) {
        await restartComponent(home, 'temporal');
        restartedTemporal = true;
      }
      if (kills === 7) {
        await restartComponent(home, 'nats');
        restartedNats = true;
      }
      worker = startWorker();
    }
    await all;

    expect(kills).toBeGreaterThanOrEqual(MIN_KILLS);
    expect(restartedTemporal && restartedNats).toBe(true);
    expect(outcomes.map((o) => o?.status)).toEqual(new Array(BUILDS).fill('succeeded'));
    for (let i = 0; i < BUILDS; i++) {
      const lines = fs
        .readFileSync(path.join(countsDir, String(i)), 'utf8')
        .trim()
        .split('\n')
        .sort();
      expect({ build: i, lines }).toEqual({ build: i, lines: ['check', 'left', 'produce', 'right', 'web'] });
    }
    await delay(500);
    expect(leftovers()).toEqual([]);
  },
  15 * 60_000,
);
