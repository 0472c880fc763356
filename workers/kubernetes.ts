import type { WorkflowBundle } from '@temporalio/worker';
import type pino from 'pino';
import { createActivities } from '../activities';
import { kubernetesRuntime, KubernetesRuntime, type KubernetesRuntimeOptions } from '../activities/runtime/kubernetes';
import { Uploads } from '../activities/runtime/kubernetes/uploads';
import { reconcileKubernetes } from '../activities/runtime/kubernetes/reconcile';
import { BuildPublisher, ensureBuildStream } from '../common/nats';
import type { WorkerCredentials } from '../activities/creds';
import { connectWorkerNats, startPollers, type RunningWorker } from './pollers';

export interface KubernetesWorkerOptions {
  temporalAddress: string;
  namespace: string;
  natsUrl: string;
  /** the worker's own disk: inputs uploaded with `causeway run -i` land here */
  home: string;
  /**
   * Serve those uploads to step pods on host:port (tar over HTTP, the build's token), telling
   * pods `advertise` (an address they can reach: the worker's pod IP) or else host. Without
   * it, a step whose input is an upload errors, saying how to set it.
   */
  uploads?: { host?: string; port: number; advertise?: string };
  /** stable across restarts, so a restarted worker re-attaches to its builds' pods */
  name: string;
  tags?: string[];
  taskQueue: string;
  logMaxAgeSeconds: number;
  /** the cluster side: namespace, kubeconfig/context, images, grace periods */
  kubernetes: Omit<KubernetesRuntimeOptions, 'worker'>;
  drainMs?: number;
  /** the cluster-wide credential manager and redaction (workers/credentials.ts); default none, redaction on */
  credentials?: WorkerCredentials;
  /** delete the objects of closed builds (terminated without teardown) this often; off when absent */
  reconcile?: { intervalMs: number };
  workflowBundle?: WorkflowBundle;
  log: pino.Logger;
}

/** A kubernetes-runtime worker: each task step becomes a pod in its namespace (one worker = one cluster + namespace). */
export async function startKubernetesWorker(opts: KubernetesWorkerOptions): Promise<RunningWorker & { runtime: KubernetesRuntime }> {
  const runtime = new KubernetesRuntime({ ...opts.kubernetes, worker: opts.name });
  const nc = await connectWorkerNats(opts.natsUrl, opts.name, opts.home, opts.log);
  await ensureBuildStream(nc, opts.logMaxAgeSeconds);
  const uploads = new Uploads({ home: opts.home, worker: opts.name, nc, token: (buildId) => runtime.buildToken(buildId) });
  runtime.uploads = uploads;
  if (opts.uploads) await uploads.listen(opts.uploads);
  const running = new Set<string>();
  const deps = {
    home: opts.home,
    workerName: opts.name,
    tags: opts.tags ?? [],
    nc,
    publisher: new BuildPublisher(nc, (what, err) =>
      opts.log.warn({ err: err.message }, `NATS unreachable: dropped the live copy of the ${what}`),
    ),
    log: opts.log,
    killGraceMs: (opts.kubernetes.graceSeconds ?? 10) * 1000,
    running,
    credentials: opts.credentials,
  };
  const activities = createActivities(deps, kubernetesRuntime(deps, runtime));
  const worker = await startPollers({
    temporalAddress: opts.temporalAddress,
    namespace: opts.namespace,
    home: opts.home,
    nc,
    name: opts.name,
    runtime: 'kubernetes',
    tags: opts.tags ?? [],
    taskQueue: opts.taskQueue,
    activities,
    workflowBundle: opts.workflowBundle,
    running,
    drainMs: opts.drainMs,
    reconcile: opts.reconcile && {
      intervalMs: opts.reconcile.intervalMs,
      pass: async (client) => {
        const report = await reconcileKubernetes(runtime, client);
        for (const buildId of report.deleted)
          opts.log.warn({ build: buildId }, 'reconciler deleted the Kubernetes objects of a closed build');
      },
    },
    log: opts.log,
  });
  opts.log.info({ worker: opts.name, namespace: opts.kubernetes.namespace, uploads: uploads.address }, 'kubernetes worker started');
  // The upload server outlives the pollers' drain: steps handed over may still be fetching.
  const done = worker.done.finally(() => Promise.all([uploads.close(), runtime.close()]));
  const shutdown = async () => {
    await worker.shutdown();
    await done;
  };
  return { ...worker, done, shutdown, runtime };
}
