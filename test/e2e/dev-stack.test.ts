// The dev stack as `causeway dev up` runs it: persistent, detached, reusable, stoppable.
// It runs beside the globalSetup stack, in its own home and on its own ports.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { jetstream } from '@nats-io/jetstream';
import { Connection, WorkflowClient } from '@temporalio/client';
import { freeStackPorts, SEARCH_ATTRIBUTES, stackStatus, startStack, stopStack, type StackInfo } from '../../cli/dev/stack';
import { isAlive, resolveEndpoints } from '../../cli/dev/state';
import { readBuild } from '../../common/build-log';
import { connectNats, ensureBuildStream } from '../../common/nats';
import { subjects } from '../../schemas/messages';

// temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD (@temporalio/proto is not a direct dependency).
const KEYWORD = 2;

/** True once the pid no longer exists at all (this process spawned it, so Node reaps it moments after it dies). */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

describe('dev stack', () => {
  let home: string;
  let ports: { temporal: number; ui: number; nats: number; natsMonitor: number };
  const quiet = (): void => undefined;
  const start = (): Promise<StackInfo> => startStack({ home, ports, persistent: true, startWorker: false, log: quiet });

  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-dev-stack-'));
    ports = await freeStackPorts();
  });

  afterAll(async () => {
    await stopStack(home);
    fs.rmSync(home, { recursive: true, force: true });
  });

  test('starts, reports alive, is reused, registers search attributes, keeps data across a restart and stops', async () => {
    const first = await start();
    expect(first.reused).toBe(false);
    expect(first.temporal.address).toBe(`127.0.0.1:${ports.temporal}`);
    expect(first.temporal.dbFile).toBe(path.join(home, 'temporal.sqlite'));
    expect(first.nats.storeDir).toBe(path.join(home, 'nats'));

    const status = await stackStatus(home);
    expect(status.running).toBe(true);
    expect(status.components.map((c) => [c.component, c.alive, c.reachable])).toEqual([
      ['temporal', true, true],
      ['nats', true, true],
    ]);
    expect(resolveEndpoints({ CAUSEWAY_HOME: home })).toEqual({ temporalAddress: first.temporal.address, natsUrl: first.nats.url });
    // Explicit endpoints win over the recorded stack.
    expect(resolveEndpoints({ CAUSEWAY_HOME: home, TEMPORAL_ADDRESS: 'elsewhere:7233' })?.temporalAddress).toBe('elsewhere:7233');

    const second = await start();
    expect(second.reused).toBe(true);
    expect([second.temporal.pid, second.nats.pid]).toEqual([first.temporal.pid, first.nats.pid]);

    const connection = await Connection.connect({ address: first.temporal.address });
    let workflowId: string;
    try {
      const ns = await connection.workflowService.describeNamespace({ namespace: 'default' });
      expect(ns.namespaceInfo?.name).toBe('default');
      const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
      for (const name of SEARCH_ATTRIBUTES) expect(customAttributes?.[name]).toBe(KEYWORD);

      // No worker polls this queue: the workflow just stays open, which is all we need to
      // see that a persistent stack keeps its data across a restart.
      const client = new WorkflowClient({ connection });
      workflowId = `dev-stack-test-${Date.now()}`;
      await client.start('build', { taskQueue: 'dev-stack-test-nobody-polls', workflowId });
    } finally {
      await connection.close();
    }

    await stopStack(home);
    expect(isAlive(first.temporal.pid, first.temporal.command)).toBe(false);
    expect(isAlive(first.nats.pid, first.nats.command)).toBe(false);
    expect(await gone(first.temporal.pid)).toBe(true);
    expect(await gone(first.nats.pid)).toBe(true);
    expect((await stackStatus(home)).running).toBe(false);
    expect(resolveEndpoints({ CAUSEWAY_HOME: home })).toBeUndefined();

    const restarted = await start();
    expect(restarted.reused).toBe(false);
    const again = await Connection.connect({ address: restarted.temporal.address });
    try {
      const described = await new WorkflowClient({ connection: again }).getHandle(workflowId).describe();
      expect(described.status.name).toBe('RUNNING');
    } finally {
      await again.close();
    }
    await stopStack(home);
    expect(await gone(restarted.temporal.pid)).toBe(true);
    expect(await gone(restarted.nats.pid)).toBe(true);
  });

  test("a build's log followed before the first worker made the stream is read once it exists", async () => {
    const stack = await start();
    const nc = await connectNats(stack.nats.url, 'dev-stack-test', { home });
    try {
      const buildId = `fresh-${Date.now()}`;
      // `causeway run` on a fresh stack starts following while the worker it started is still coming up.
      expect(await readAll(readBuild(nc, buildId, { follow: false }))).toEqual([]);
      const followed = readAll(readBuild(nc, buildId, { follow: true }));
      await delay(500);
      await ensureBuildStream(nc, 3600);
      const js = jetstream(nc);
      const finished = { type: 'build-finished', buildId, status: 'succeeded', time: new Date().toISOString() };
      await js.publish(subjects.event(buildId), JSON.stringify(finished));
      expect(await followed).toEqual([{ kind: 'event', event: finished, time: expect.any(Date) }]);
    } finally {
      await nc.close();
      await stopStack(home);
    }
  });
});

async function readAll<T>(records: AsyncGenerator<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const record of records) all.push(record);
  return all;
}
