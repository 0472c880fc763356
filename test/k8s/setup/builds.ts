// What the whole-build tests on the kubernetes runtime share: a real Temporal dev server and
// NATS on free ports (as the integration project starts them), the workflow bundle, one
// kubernetes-runtime worker in the test's namespace, and a client of each.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import type { WorkflowBundle } from '@temporalio/worker';
import pino from 'pino';
import type { KubernetesRuntime } from '../../../activities/runtime/kubernetes/runtime';
import { startStackOnFreePorts, stopStack } from '../../../cli/dev/stack';
import { connectNats } from '../../../common/nats';
import { startKubernetesWorker, type KubernetesWorkerOptions } from '../../../workers/kubernetes';
import type { RunningWorker } from '../../../workers/pollers';
import { causewayDataConverter, loadCodecKeys } from '../../../common/codec';
import { bundleBuildWorkflows } from '../../../workers/bundle';

export interface BuildEnv {
  home: string;
  bundle: WorkflowBundle;
  endpoints: { temporal: string; nats: string };
  taskQueue: string;
  worker: RunningWorker & { runtime: KubernetesRuntime };
  client: Client;
  nc: Awaited<ReturnType<typeof connectNats>>;
  stop(): Promise<void>;
}

/** `worker`: the worker's options that differ per test file (its cluster side, tags, uploads). */
export async function startBuildEnv(
  prefix: string,
  worker: Pick<KubernetesWorkerOptions, 'kubernetes'> & Partial<Pick<KubernetesWorkerOptions, 'tags' | 'uploads'>>,
): Promise<BuildEnv> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), `causeway-${prefix}-`));
  const stack = await startStackOnFreePorts({ home, persistent: false, startWorker: false });
  const bundle = await bundleBuildWorkflows();
  const endpoints = { temporal: stack.temporal.address, nats: stack.nats.url };
  const taskQueue = `${prefix}-${randomUUID()}`;
  const running = await startKubernetesWorker({
    temporalAddress: endpoints.temporal,
    namespace: 'default',
    natsUrl: endpoints.nats,
    home,
    name: `${prefix}-${randomUUID().slice(0, 8)}`,
    taskQueue,
    logMaxAgeSeconds: 3600,
    drainMs: 1000,
    workflowBundle: bundle,
    log: pino({ level: 'warn' }),
    ...worker,
  });
  const connection = await Connection.connect({ address: endpoints.temporal });
  const nc = await connectNats(endpoints.nats, `${prefix}-test`, { home });
  return {
    home,
    bundle,
    endpoints,
    taskQueue,
    worker: running,
    client: new Client({ connection, dataConverter: causewayDataConverter(loadCodecKeys({ home })) }),
    nc,
    async stop() {
      await running.shutdown();
      await connection.close();
      await nc.close();
      await stopStack(home);
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}
