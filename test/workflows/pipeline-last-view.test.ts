// set-pipeline reads a destroyed pipeline's build numbers (to number on from) without a worker:
// a query of a closed workflow needs one to replay it, and the pipeline's old task queue may
// have none (its worker gone, or the pipeline set from another queue). rename-pipeline tells
// whether its new name is taken without one too. No worker polls the queues here.
import { randomUUID } from 'node:crypto';
import type { Client, Connection } from '@temporalio/client';
import { describePipeline, lastPipelineView } from '../../common/pipeline-set';
import { connectTemporalClient } from '../../common/temporal-connection';
import { emptyPipelineInput, jobBuildId, PIPELINE_WORKFLOW, pipelineWorkflowId } from '../../schemas/pipeline-api';
import type { PipelineConfig } from '../../schemas/pipeline';
import { testStack } from '../setup/env';

let client: Client;
let connection: Connection;
const queue = `nobody-${randomUUID()}`;

beforeAll(async () => {
  const stack = testStack();
  ({ client, connection } = await connectTemporalClient({ address: stack.temporalAddress, home: stack.home }));
});
afterAll(() => connection.close());

const config = (name: string) => ({ name, text: '', resources: [], resourceTypes: [], jobs: [] }) as unknown as PipelineConfig;

/** A pipeline workflow that no worker runs, and one job build workflow per `builds` entry, all terminated. */
async function terminatedPipeline(name: string, builds: [string, number][]): Promise<void> {
  const handles = [
    await client.workflow.start(PIPELINE_WORKFLOW, {
      taskQueue: queue,
      workflowId: pipelineWorkflowId(name),
      args: [emptyPipelineInput(config(name))],
    }),
    ...(await Promise.all(
      builds.map(([job, n]) => client.workflow.start('build', { taskQueue: queue, workflowId: jobBuildId(name, job, n), args: [{}] })),
    )),
  ];
  for (const h of handles) await h.terminate('test');
}

test('a pipeline that never existed has no last view', async () => {
  expect(await lastPipelineView(client, `never-${randomUUID().slice(0, 8)}`)).toBeUndefined();
});

test('a destroyed pipeline without a result: its numbers from its builds in visibility, no worker needed', async () => {
  const name = `gone-${randomUUID().slice(0, 8)}`;
  // `unit` numbered past 9 (10 sorts before 9 as text), a job whose name has a colon, and another
  // pipeline whose name starts with this one's.
  await terminatedPipeline(name, [
    ['unit', 9],
    ['unit', 10],
    ['unit', 2],
    ['deploy:prod', 3],
  ]);
  await terminatedPipeline(`${name}-other`, [['unit', 40]]);
  // Visibility follows the start a moment later.
  let last = await lastPipelineView(client, name);
  for (let i = 0; i < 50 && !(last && !last.running && last.counters.unit === 10); i++) {
    await new Promise((r) => setTimeout(r, 100));
    last = await lastPipelineView(client, name);
  }
  expect(last).toEqual({ running: false, counters: { unit: 10, 'deploy:prod': 3 } });
});

test('a running pipeline is described without a query: rename-pipeline checks its new name so, with no worker to answer', async () => {
  const name = `taken-${randomUUID().slice(0, 8)}`;
  const handle = await client.workflow.start(PIPELINE_WORKFLOW, {
    taskQueue: queue,
    workflowId: pipelineWorkflowId(name),
    args: [emptyPipelineInput(config(name))],
  });
  try {
    const started = Date.now();
    expect(await describePipeline(client, name)).toEqual({ running: true, taskQueue: queue });
    // A query would have waited for a poller (NO_POLLER_GRACE_MS, 5 s) before failing.
    expect(Date.now() - started).toBeLessThan(3_000);
  } finally {
    await handle.terminate('test');
  }
});

test('a running pipeline that no worker answers: the error says to start one', async () => {
  const name = `stuck-${randomUUID().slice(0, 8)}`;
  const handle = await client.workflow.start(PIPELINE_WORKFLOW, {
    taskQueue: queue,
    workflowId: pipelineWorkflowId(name),
    args: [emptyPipelineInput(config(name))],
  });
  try {
    await expect(lastPipelineView(client, name)).rejects.toThrow(
      /pipeline stuck-\S+ did not answer \(no worker polls its task queue\): start a worker on task queue/,
    );
  } finally {
    await handle.terminate('test');
  }
});
