import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker, type WorkflowBundle } from '@temporalio/worker';
import type pino from 'pino';
import { workerTaskQueue } from '../activities/build';
import { createKubernetesActivities, KubernetesRuntime, type KubernetesRuntimeOptions } from '../activities/runtime/kubernetes';
import { reconcileKubernetes } from '../activities/runtime/kubernetes/reconcile';
import { BuildPublisher, connectNats, ensureBuildStream } from '../common/nats';
import type { RunningWorker } from './local';

export interface KubernetesWorkerOptions {
  temporalAddress: string;
  namespace: string;
  natsUrl: string;
  /** the worker's own disk: inputs uploaded with `causeway run -i` land here */
  home: string;
  /** stable across restarts, so a restarted worker re-attaches to its builds' pods */
  name: string;
  tags?: string[];
  taskQueue: string;
  logMaxAgeSeconds: number;
  /** the cluster side: namespace, kubeconfig/context, images, grace periods */
  kubernetes: Omit<KubernetesRuntimeOptions, 'worker'>;
  drainMs?: number;
  /** delete the objects of closed builds (terminated without teardown) this often; off when absent */
  reconcile?: { intervalMs: number };
  workflowBundle?: WorkflowBundle;
  log: pino.Logger;
}

/**
 * A kubernetes-runtime worker: like a local one, one poller on the shared queue (build
 * workflows, claiming builds) and one on its own queue, where each task step becomes a pod
 * in its namespace. (Registration in the worker registry comes with the registry's
 * `kubernetes` runtime kind; see docs/kubernetes.md.)
 */
export async function startKubernetesWorker(opts: KubernetesWorkerOptions): Promise<RunningWorker & { runtime: KubernetesRuntime }> {
  const runtime = new KubernetesRuntime({ ...opts.kubernetes, worker: opts.name });
  const nc = await connectNats(opts.natsUrl, `causeway-worker-${opts.name}`);
  await ensureBuildStream(nc, opts.logMaxAgeSeconds);
  const running = new Set<string>();
  const activities = createKubernetesActivities(
    {
      home: opts.home,
      workerName: opts.name,
      tags: opts.tags ?? [],
      nc,
      publisher: new BuildPublisher(nc, (what, err) => opts.log.warn({ err: err.message }, `NATS unreachable: dropped the live copy of the ${what}`)),
      log: opts.log,
      killGraceMs: (opts.kubernetes.graceSeconds ?? 10) * 1000,
      running,
    },
    runtime,
  );
  const connection = await NativeConnection.connect({ address: opts.temporalAddress });
  const workflows = opts.workflowBundle
    ? { workflowBundle: opts.workflowBundle }
    : { workflowsPath: require.resolve(path.join(__dirname, '..', 'workflows')) };
  const common = {
    connection,
    namespace: opts.namespace,
    activities,
    maxHeartbeatThrottleInterval: '1 second',
    shutdownGraceTime: opts.drainMs ?? 10 * 60_000,
  } as const;
  const shared = await Worker.create({ ...common, ...workflows, taskQueue: opts.taskQueue });
  const own = await Worker.create({ ...common, taskQueue: workerTaskQueue(opts.name), maxConcurrentActivityTaskExecutions: 1000 });
  let stopping = false;
  const shutdown = () => {
    if (stopping) return;
    stopping = true;
    shared.shutdown();
    own.shutdown();
  };
  const stopReconciling = opts.reconcile ? await startReconciler(opts, runtime, opts.reconcile.intervalMs) : async () => undefined;
  const done = Promise.all([shared.run(), own.run()]).then(async () => {
    await stopReconciling();
    await connection.close();
    await nc.close();
  });
  opts.log.info({ worker: opts.name, namespace: opts.kubernetes.namespace, taskQueue: opts.taskQueue }, 'kubernetes worker started');
  return {
    name: opts.name,
    taskQueue: opts.taskQueue,
    runtime,
    done,
    async shutdown() {
      shutdown();
      await done;
    },
  };
}

async function startReconciler(opts: KubernetesWorkerOptions, runtime: KubernetesRuntime, intervalMs: number): Promise<() => Promise<void>> {
  const connection = await Connection.connect({ address: opts.temporalAddress });
  const client = new Client({ connection, namespace: opts.namespace });
  let pass: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    pass = pass.then(async () => {
      try {
        const report = await reconcileKubernetes(runtime, client);
        for (const buildId of report.deleted) opts.log.warn({ build: buildId }, 'reconciler deleted the Kubernetes objects of a closed build');
      } catch (err) {
        opts.log.warn({ err: (err as Error).message }, 'kubernetes reconcile pass failed; will try again');
      }
    });
  }, intervalMs);
  return async () => {
    clearInterval(timer);
    await pass;
    await connection.close();
  };
}
