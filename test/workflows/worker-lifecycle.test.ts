// A worker that stops (SIGTERM, land) hands its running steps over instead of killing them,
// and a worker started again with the same name re-attaches and finishes the build.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import type { NatsConnection } from '@nats-io/transport-node';
import pino from 'pino';
import { awaitBuild, startBuild } from '../../common/build-client';
import { connectNats } from '../../common/nats';
import { compilePlan } from '../../schemas';
import { WorkerControlReply, WorkerRecord, shownState, workerControlSubject } from '../../schemas/workers';
import { startLocalWorker } from '../../workers/local';
import { listWorkers, pruneWorker, workerBucket } from '../../workers/registry';
import { testStack } from '../setup/env';
import { sharedBundle, stalledWorkerRecord, waitFor } from './harness';
import type { BuildSummary } from '../../schemas/build';
import { causewayDataConverter, loadCodecKeys } from '../../common/codec';
import { stepWritableDir } from '../setup/step-dir';
import { whyWaiting } from '../../cli/waiting';

const stack = testStack();
let client: Client;
let connection: Connection;
let nc: NatsConnection;
let dir: string;

beforeAll(async () => {
  connection = await Connection.connect({ address: stack.temporalAddress });
  client = new Client({ connection, dataConverter: causewayDataConverter(loadCodecKeys({ home: stack.home })) });
  nc = await connectNats(stack.natsUrl, 'lifecycle-test');
  dir = stepWritableDir('causeway-lifecycle-');
});
afterAll(async () => {
  await nc.close();
  await connection.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function worker(name: string, taskQueue: string) {
  return startLocalWorker({
    temporalAddress: stack.temporalAddress,
    namespace: 'default',
    natsUrl: stack.natsUrl,
    home: stack.home,
    name,
    taskQueue,
    logMaxAgeSeconds: 3600,
    killGraceMs: 1000,
    drainMs: 300,
    workflowBundle: await sharedBundle(stack.home),
    log: pino({ level: 'silent' }),
  });
}

/** Makes a running step's directory look as a worker before the spec moved into the `starting` marker left it. */
function asLegacyStepDir(buildId: string): void {
  const builds = path.join(stack.home, 'builds', buildId);
  const markers = fs
    .readdirSync(builds, { recursive: true, encoding: 'utf8' })
    .filter((f) => path.basename(f) === 'starting')
    .map((f) => path.join(builds, f));
  expect(markers).toHaveLength(1);
  const stepDir = path.dirname(markers[0]);
  fs.writeFileSync(path.join(stepDir, 'spec.json'), fs.readFileSync(markers[0]));
  fs.writeFileSync(markers[0], '');
}

test.each([
  ['', false],
  [' (a step dir as the previous release left it: spec.json, an empty marker)', true],
])('a landed worker hands its running step over; the next worker of that name finishes it%s', async (_, legacy) => {
  const name = `w-${randomUUID().slice(0, 8)}`;
  const taskQueue = `test-${randomUUID()}`;
  const counter = path.join(dir, `count-${name}`);
  const first = await worker(name, taskQueue);

  const plan = compilePlan({
    file: 'handover.yml',
    text: `plan:\n- task: long\n  config:\n    platform: linux\n    run: {path: sh, args: [-c, 'echo start >> ${counter}; sleep 3; echo done']}\n`,
  });
  const handle = await startBuild(client, { plan, taskQueue });
  while (!fs.existsSync(counter)) await delay(50);

  const kv = await workerBucket(nc);
  const listed = WorkerRecord.parse((await kv.get(name))?.json());
  expect(listed).toMatchObject({ name, state: 'running', runtime: 'local' });

  const reply = WorkerControlReply.parse(
    (await nc.request(workerControlSubject(name), JSON.stringify({ action: 'land' }), { timeout: 5000 })).json(),
  );
  expect(reply).toMatchObject({ ok: true, running: 1 });
  await first.done;
  // Landed workers stay listed (as Concourse lists them) until they start again.
  expect(WorkerRecord.parse((await kv.get(name))?.json())).toMatchObject({ state: 'landed', running: [] });
  if (legacy) asLegacyStepDir(handle.workflowId);

  const second = await worker(name, taskQueue);
  expect(WorkerRecord.parse((await kv.get(name))?.json())).toMatchObject({ state: 'running' });
  try {
    const outcome = await awaitBuild(handle);
    expect(outcome.status).toBe('succeeded');
    // Started once: the second worker re-attached to the process the first one started.
    expect(fs.readFileSync(counter, 'utf8')).toBe('start\n');
  } finally {
    await second.shutdown();
  }
});

test("an attempt the server timed out (its worker's event loop stalled) leaves its step to the retry, which re-attaches", async () => {
  const name = `w-${randomUUID().slice(0, 8)}`;
  const taskQueue = `test-${randomUUID()}`;
  const counter = path.join(dir, `count-${name}`);
  const w = await worker(name, taskQueue);
  try {
    const plan = compilePlan({
      file: 'stall.yml',
      text: `plan:\n- task: long\n  config:\n    platform: linux\n    run: {path: sh, args: [-c, 'echo start >> ${counter}; sleep 9; echo done']}\n`,
    });
    const handle = await startBuild(client, { plan, taskQueue });
    while (!fs.existsSync(counter)) await delay(50);
    // No heartbeat leaves this process while its main thread is held (a starved worker under load):
    // past the 5 s heartbeat timeout the server times the attempt out and schedules a retry.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 7000);
    const outcome = await awaitBuild(handle);
    expect({ status: outcome.status, message: outcome.message }).toEqual({ status: 'succeeded', message: undefined });
    const { events } = await handle.fetchHistory();
    expect(Math.max(...(events ?? []).map((e) => e.activityTaskStartedEventAttributes?.attempt ?? 1))).toBe(2);
    // Started once: the retry re-attached to the process the timed-out attempt had started.
    expect(fs.readFileSync(counter, 'utf8')).toBe('start\n');
  } finally {
    await w.shutdown();
  }
});

test('a build whose only worker landed says why it waits, before its first workflow task runs', async () => {
  const name = `w-${randomUUID().slice(0, 8)}`;
  const taskQueue = `test-${randomUUID()}`;
  const first = await worker(name, taskQueue);
  try {
    await nc.request(workerControlSubject(name), JSON.stringify({ action: 'land' }), { timeout: 5000 });
  } catch (err) {
    // A worker left polling keeps jest from ever exiting.
    await first.shutdown();
    throw err;
  }
  await first.done;
  // Temporal usually lists the landed worker's pollers for minutes, so only the registry tells;
  // sometimes it has already dropped them, and the reason is then that nobody polls.
  const plan = compilePlan({ file: 'idle.yml', text: 'plan:\n- task: t\n  config:\n    run: {path: "true"}\n' });
  const handle = await startBuild(client, { plan, taskQueue });
  const session = { client, nc, namespace: 'default', taskQueue, close: async () => undefined };
  try {
    const why = await waitFor('a reason to wait', () => whyWaiting(session, handle));
    expect(why.reason).toMatch(
      new RegExp(
        `^waiting for (its worker: its next workflow task scheduled but not started|a worker: no worker polls task queue '${taskQueue}'); ` +
          `workers not taking builds: .*${name} \\(landed\\)`,
      ),
    );
  } finally {
    await handle.terminate('test cleanup');
  }
});

test('retire: the worker finishes and leaves the list for good; prune removes stalled and landed workers, never a live one', async () => {
  const kv = await workerBucket(nc);
  const name = `w-${randomUUID().slice(0, 8)}`;
  const live = await worker(name, `test-${randomUUID()}`);
  await expect(pruneWorker(kv, name)).rejects.toThrow(
    new RegExp(`worker ${name} is running \\(heard from \\d+s ago\\): only stalled or landed workers can be pruned`),
  );
  const reply = WorkerControlReply.parse(
    (await nc.request(workerControlSubject(name), JSON.stringify({ action: 'retire' }), { timeout: 5000 })).json(),
  );
  expect(reply.message).toMatch(/^retiring: 0 running step\(s\) finish here, no new steps start; then it leaves the worker list for good$/);
  await live.done;
  expect((await listWorkers(kv)).map((w) => w.name)).not.toContain(name);

  // A worker that died leaves its record behind, no longer refreshed: stalled, then pruned.
  const crashed = `w-${randomUUID().slice(0, 8)}`;
  await kv.put(crashed, JSON.stringify(stalledWorkerRecord(crashed)));
  expect(
    shownState(
      (await listWorkers(kv)).find((w) => w.name === crashed)!,
      Date.now(),
    ),
  ).toBe('stalled');
  await pruneWorker(kv, crashed);
  expect((await listWorkers(kv)).map((w) => w.name)).not.toContain(crashed);
  await expect(pruneWorker(kv, crashed)).rejects.toThrow(`no worker named ${crashed} in the registry`);
});

test("a step no worker starts says so in the build's status and details until its worker is back", async () => {
  const name = `w-${randomUUID().slice(0, 8)}`;
  const taskQueue = `test-${randomUUID()}`;
  const started = path.join(dir, `started-${name}`);
  const gate = path.join(dir, `gate-${name}`);
  const options = {
    temporalAddress: stack.temporalAddress,
    namespace: 'default',
    natsUrl: stack.natsUrl,
    home: stack.home,
    taskQueue,
    logMaxAgeSeconds: 3600,
    workflowBundle: await sharedBundle(stack.home),
    log: pino({ level: 'silent' }),
  };
  // Its running step may finish while it lands, so the next one is scheduled on its queue with nobody polling.
  const first = await startLocalWorker({ ...options, name, drainMs: 60_000 });
  const plan = compilePlan({
    file: 'waiting.yml',
    text:
      `plan:\n- task: gated\n  config:\n    platform: linux\n    run: {path: sh, args: [-c, 'touch ${started}; while [ ! -e ${gate} ]; do sleep 0.1; done']}\n` +
      `- task: next\n  config:\n    platform: linux\n    run: {path: 'true'}\n`,
  });
  const handle = await startBuild(client, { plan, taskQueue });
  while (!fs.existsSync(started)) await delay(50);
  // The build's workflow tasks go on on another worker; its steps wait for the one that claimed it.
  const other = await startLocalWorker({ ...options, name: `${name}-other` });
  const landed = first.shutdown();
  await delay(500);
  fs.writeFileSync(gate, '');

  const status = () => handle.query<BuildSummary>('status');
  const next = async () => (await status()).steps.find((s) => s.name === 'next');
  const note = await waitFor('the waiting note', async () => (await next())?.message);
  expect(note).toMatch(/^waiting for a worker since .*: no worker has started it from task queue causeway\.worker\./);
  const details = await handle.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
  expect(details.currentDetails).toContain('**Waiting for a worker** to start');

  await landed;
  const again = await startLocalWorker({ ...options, name });
  try {
    const outcome = await awaitBuild(handle);
    expect(outcome.status).toBe('succeeded');
    const step = outcome.summary?.steps.find((s) => s.name === 'next');
    expect(step?.state).toBe('succeeded');
    expect(step?.message).toBeUndefined();
  } finally {
    await Promise.all([again.shutdown(), other.shutdown()]);
  }
});
