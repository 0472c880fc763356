// A step's log on JetStream is byte-exact through worker crashes: chatty steps (lines of every
// length, unfinished lines, stdout and stderr) run while the worker process is SIGKILLed again
// and again at random points; afterwards each step's stdout and stderr on JetStream must equal
// the step's own stdout and stderr files, every byte, in order.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { Client, Connection, WorkflowHandle } from '@temporalio/client';
import type { NatsConnection } from '@nats-io/transport-node';
import { awaitBuild, startBuild, type BuildOutcome } from '../../common/build-client';
import { readBuild } from '../../common/build-log';
import { connectNats } from '../../common/nats';
import { connectTemporalClient } from '../../common/temporal-connection';
import { compilePlan } from '../../schemas';
import { testStack } from '../setup/env';

// temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED (@temporalio/proto is not a direct dependency).
const ACTIVITY_STARTED = 2;
const BUILDS = 3;
const KILLS = 6;
const TASK_QUEUE = 'log-crash';
const WORKER = path.resolve(__dirname, '../../dist/workers/main.js');

const stack = testStack();
/** for the worker's log; the worker's home is the test stack's, where NATS credentials are */
let logDir: string;
let connection: Connection;
let client: Client;
let nc: NatsConnection;
let worker: ChildProcess | undefined;

function startWorker(): ChildProcess {
  const log = fs.openSync(path.join(logDir, 'worker.log'), 'a');
  const child = spawn(process.execPath, [WORKER], {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: stack.temporalAddress,
      NATS_URL: stack.natsUrl,
      CAUSEWAY_HOME: stack.home,
      CAUSEWAY_WORKER_NAME: TASK_QUEUE,
      CAUSEWAY_TASK_QUEUE: TASK_QUEUE,
      CAUSEWAY_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', log, log],
  });
  fs.closeSync(log);
  return child;
}

beforeAll(async () => {
  if (!fs.existsSync(WORKER)) throw new Error('run `npm run build` first (npm test does)');
  logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-log-crash-'));
  ({ client, connection } = await connectTemporalClient({ address: stack.temporalAddress, home: stack.home }));
  nc = await connectNats(stack.natsUrl, 'log-crash-test', { home: stack.home });
});

afterAll(async () => {
  worker?.kill('SIGKILL');
  await nc?.close();
  await connection?.close();
  fs.rmSync(logDir, { recursive: true, force: true });
});

// ~3000 writes over ~60 s: lines from 0 to 300 bytes, some without a line end, some on stderr,
// and now and then a burst of 100 KB with no pause, so chunks of every size, partial and full,
// are in flight when the worker dies.
const chatty = `
import sys, time
for i in range(3000):
    out = sys.stderr if i % 7 == 0 else sys.stdout
    size = 100000 if i % 500 == 499 else (i * 131) % 300
    out.write(("%d:" % i) + ("x" * size) + ("" if i % 5 == 0 else "\\n"))
    out.flush()
    time.sleep(0.02)
`;

const plan = (i: number) => `
plan:
- task: chatty-${i}
  config:
    platform: linux
    run: {path: python3, args: [-c, ${JSON.stringify(chatty)}]}
`;

/** Waits until every build's step activity is started (not waiting for a retry); false when one has ended. */
async function stepsRunning(handles: WorkflowHandle[]): Promise<boolean> {
  for (;;) {
    const described = await Promise.all(handles.map((h) => h.describe()));
    if (described.some((d) => d.status.name !== 'RUNNING')) return false;
    const started = described.map((d) => d.raw.pendingActivities?.some((a) => a.state === ACTIVITY_STARTED));
    if (started.every(Boolean)) return true;
    await delay(200);
  }
}

/** What JetStream holds of one step's stream, concatenated in publish order. */
async function published(buildId: string, stream: 'stdout' | 'stderr'): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const r of readBuild(nc, buildId, { follow: false }))
    if (r.kind === 'log' && r.stream === stream) parts.push(Buffer.from(r.data));
  return Buffer.concat(parts);
}

/** The step's own output file, under the worker's home (one run of the step in these builds). */
function written(buildId: string, file: 'stdout' | 'stderr'): Buffer {
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name === file && !p.includes(`${path.sep}inputs${path.sep}`)) found.push(p);
    }
  };
  walk(path.join(stack.home, 'builds', buildId));
  expect(found).toHaveLength(1);
  return fs.readFileSync(found[0]);
}

test(
  'every byte of a step reaches JetStream exactly once, in order, through repeated worker kills',
  async () => {
    worker = startWorker();
    const handles = [];
    for (let i = 0; i < BUILDS; i++) {
      handles.push(await startBuild(client, { plan: compilePlan({ file: `log-crash-${i}.yml`, text: plan(i) }), taskQueue: TASK_QUEUE }));
      await delay(1500); // the builds' steps are at different points when each kill lands
    }
    const outcomes: BuildOutcome[] = [];
    const all = Promise.all(handles.map((h, i) => awaitBuild(h).then((o) => (outcomes[i] = o))));
    let done = false;
    void all.then(() => (done = true));
    let kills = 0;
    while (kills < KILLS && !done) {
      // Each kill lands while every step's activity runs: Temporal retries it once its 5 s
      // heartbeat timeout has passed, and the kill after that hits the retry as it resumes the
      // log (early) or while it streams (late).
      if (!(await stepsRunning(handles))) break;
      await delay(Math.random() * 2500);
      worker.kill('SIGKILL');
      kills += 1;
      await delay(300 + Math.random() * 500);
      worker = startWorker();
    }
    await all;

    expect(kills).toBeGreaterThanOrEqual(4);
    expect(outcomes.map((o) => [o.status, o.message])).toEqual(new Array(BUILDS).fill(['succeeded', undefined]));
    for (const h of handles) {
      // The step's log was resumed by a retried activity, or the comparison proves nothing.
      const { events } = await h.fetchHistory();
      const attempts = (events ?? []).map((e) => e.activityTaskStartedEventAttributes?.attempt ?? 0);
      expect(Math.max(...attempts)).toBeGreaterThanOrEqual(2);
      for (const stream of ['stdout', 'stderr'] as const) {
        const file = written(h.workflowId, stream);
        expect(file.length).toBeGreaterThan(50_000);
        const sent = await published(h.workflowId, stream);
        // Compare lengths first: a diff of two megabytes would drown the report.
        expect({ build: h.workflowId, stream, bytes: sent.length }).toEqual({ build: h.workflowId, stream, bytes: file.length });
        expect(sent.equals(file)).toBe(true);
      }
    }
  },
  10 * 60_000,
);
