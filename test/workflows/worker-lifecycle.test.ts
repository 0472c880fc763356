// A worker that stops (SIGTERM, land) hands its running steps over instead of killing them,
// and a worker started again with the same name re-attaches and finishes the build.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Client, Connection } from '@temporalio/client';
import type { NatsConnection } from '@nats-io/transport-node';
import pino from 'pino';
import { awaitBuild, startBuild } from '../../common/build-client';
import { connectNats } from '../../common/nats';
import { compilePlan } from '../../schemas';
import { WorkerControlReply, WorkerRecord, workerControlSubject } from '../../schemas/workers';
import { startLocalWorker } from '../../workers/local';
import { workerBucket } from '../../workers/registry';
import { testStack } from '../setup/env';
import { sharedBundle } from './harness';

const stack = testStack();
let client: Client;
let connection: Connection;
let nc: NatsConnection;
let dir: string;

beforeAll(async () => {
  connection = await Connection.connect({ address: stack.temporalAddress });
  client = new Client({ connection });
  nc = await connectNats(stack.natsUrl, 'lifecycle-test');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-lifecycle-'));
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

test('a landed worker hands its running step over; the next worker of that name finishes it', async () => {
  const name = `w-${randomUUID().slice(0, 8)}`;
  const taskQueue = `test-${randomUUID()}`;
  const counter = path.join(dir, 'count');
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

  const reply = WorkerControlReply.parse((await nc.request(workerControlSubject(name), JSON.stringify({ action: 'land' }), { timeout: 5000 })).json());
  expect(reply).toMatchObject({ ok: true, running: 1 });
  await first.done;

  const second = await worker(name, taskQueue);
  try {
    const outcome = await awaitBuild(handle);
    expect(outcome.status).toBe('succeeded');
    // Started once: the second worker re-attached to the process the first one started.
    expect(fs.readFileSync(counter, 'utf8')).toBe('start\n');
  } finally {
    await second.shutdown();
  }
});
