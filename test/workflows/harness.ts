import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, type WorkflowBundle } from '@temporalio/worker';
import type { NatsConnection } from '@nats-io/transport-node';
import pino from 'pino';
import { awaitBuild, startBuild, type BuildOutcome } from '../../common/build-client';
import { collectLogs } from '../../common/build-log';
import { connectNats } from '../../common/nats';
import { compilePlan } from '../../schemas';
import { startLocalWorker, type RunningWorker } from '../../workers/local';
import { testStack } from '../setup/env';

/** Workflow code is bundled once per test run and shared by every test file through a file in the run's home. */
async function sharedBundle(home: string): Promise<WorkflowBundle> {
  const file = path.join(home, 'workflow-bundle.js');
  try {
    return { code: await fs.readFile(file, 'utf8') };
  } catch {
    const bundle = await bundleWorkflowCode({
      workflowsPath: require.resolve('../../workflows'),
      logger: { log: () => undefined, trace: () => undefined, debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
    });
    await fs.writeFile(file, bundle.code);
    return bundle;
  }
}

export interface Harness {
  client: Client;
  nc: NatsConnection;
  worker: RunningWorker;
  taskQueue: string;
  home: string;
  /** compiles and runs a plan, waiting for the end */
  run(yaml: string, opts?: { vars?: Record<string, unknown>; uploads?: string[]; downloads?: string[] }): Promise<BuildRun>;
  stop(): Promise<void>;
}

export interface BuildRun extends BuildOutcome {
  buildId: string;
  logs: Map<string, string>;
}

/** A real worker on its own task queue against the run's real Temporal and NATS. */
export async function startHarness(opts: { killGraceMs?: number; tags?: string[] } = {}): Promise<Harness> {
  const stack = testStack();
  const taskQueue = `test-${randomUUID()}`;
  const worker = await startLocalWorker({
    temporalAddress: stack.temporalAddress,
    namespace: 'default',
    natsUrl: stack.natsUrl,
    home: stack.home,
    name: `w-${randomUUID().slice(0, 8)}`,
    tags: opts.tags,
    taskQueue,
    logMaxAgeSeconds: 3600,
    killGraceMs: opts.killGraceMs ?? 2000,
    workflowBundle: await sharedBundle(stack.home),
    log: pino({ level: 'warn' }),
  });
  const connection = await Connection.connect({ address: stack.temporalAddress });
  const client = new Client({ connection });
  const nc = await connectNats(stack.natsUrl, 'test');
  return {
    client,
    nc,
    worker,
    taskQueue,
    home: stack.home,
    async run(yaml, runOpts = {}) {
      const plan = compilePlan({ text: yaml, file: 'test.yml', vars: runOpts.vars });
      const handle = await startBuild(client, { plan, taskQueue, uploads: runOpts.uploads, downloads: runOpts.downloads });
      const outcome = await awaitBuild(handle);
      return { ...outcome, buildId: handle.workflowId, logs: await collectLogs(nc, handle.workflowId) };
    },
    async stop() {
      await worker.shutdown();
      await nc.close();
      await connection.close();
    },
  };
}
