import os from 'node:os';
import type { WorkflowBundle } from '@temporalio/worker';
import type pino from 'pino';
import { createActivities } from '../activities';
import { containerdLeftovers, containerdRuntime, type ContainerdRuntimeOptions } from '../activities/runtime/containerd';
import { localRuntime } from '../activities/runtime/local';
import { reconcileBuilds } from '../activities/reconcile';
import { BuildPublisher, ensureBuildStream } from '../common/nats';
import type { WorkerCredentials } from '../activities/creds';
import { connectWorkerNats, startPollers, type RunningWorker } from './pollers';

export interface LocalWorkerOptions {
  temporalAddress: string;
  namespace: string;
  natsUrl: string;
  home: string;
  /** stable across restarts, so a restarted worker picks up its builds' steps */
  name?: string;
  tags?: string[];
  /** the queue builds are submitted to */
  taskQueue: string;
  logMaxAgeSeconds: number;
  killGraceMs?: number;
  /** the cluster-wide credential manager and redaction (workers/credentials.ts); default none, redaction on */
  credentials?: WorkerCredentials;
  /** on shutdown or landing, how long running steps may finish here before they are handed over */
  drainMs?: number;
  /** look for leftovers of closed builds this often (off when absent) */
  reconcile?: { intervalMs: number; retentionMs: number };
  /** run steps as containerd containers (the containerd runtime) instead of host processes */
  containerd?: ContainerdRuntimeOptions;
  /** a prebuilt workflow bundle (tests bundle once); otherwise the worker bundles workflows/ itself */
  workflowBundle?: WorkflowBundle;
  log: pino.Logger;
}

export type { ContainerdRuntimeOptions, RunningWorker };
export type { OciRuntimeChoice } from '../activities/runtime/containerd/oci-runtime';
/** The reconcile pass this worker runs on a timer, for `causeway reconcile` to run by hand (the CLI imports workers/, not activities/). */
export { reconcileBuilds };
/** A containerd worker's part of that pass, for `causeway reconcile` by hand. */
export { containerdLeftovers };

/**
 * A worker of one machine: steps run as processes on this host (local) or as containerd
 * containers (containerd), next to their artifacts on its disk.
 */
export async function startLocalWorker(opts: LocalWorkerOptions): Promise<RunningWorker> {
  const name = opts.name ?? os.hostname();
  const nc = await connectWorkerNats(opts.natsUrl, name, opts.home, opts.log);
  await ensureBuildStream(nc, opts.logMaxAgeSeconds);
  const running = new Set<string>();
  const deps = {
    home: opts.home,
    workerName: name,
    tags: opts.tags ?? [],
    nc,
    publisher: new BuildPublisher(nc, (what, err) =>
      opts.log.warn({ err: err.message }, `NATS unreachable: dropped the live copy of the ${what}`),
    ),
    log: opts.log,
    killGraceMs: opts.killGraceMs ?? 10_000,
    running,
    credentials: opts.credentials,
  };
  const activities = createActivities(deps, opts.containerd ? containerdRuntime(deps, opts.containerd) : localRuntime(deps));
  const reconcile = opts.reconcile;
  return startPollers({
    temporalAddress: opts.temporalAddress,
    namespace: opts.namespace,
    home: opts.home,
    nc,
    name,
    runtime: opts.containerd ? 'containerd' : 'local',
    tags: opts.tags ?? [],
    taskQueue: opts.taskQueue,
    activities,
    workflowBundle: opts.workflowBundle,
    running,
    drainMs: opts.drainMs,
    reconcile: reconcile && {
      intervalMs: reconcile.intervalMs,
      pass: async (client) => {
        const report = await reconcileBuilds({
          home: opts.home,
          client,
          retentionMs: reconcile.retentionMs,
          killGraceMs: opts.killGraceMs ?? 10_000,
          removeRuntimeObjects: opts.containerd && containerdLeftovers(opts.home, opts.containerd),
        });
        for (const s of report.stopped)
          opts.log.warn({ build: s.buildId, pid: s.pid, dir: s.dir }, 'reconciler stopped a process of a closed build');
        for (const dir of report.removed) opts.log.info({ dir }, 'reconciler removed the artifacts of an expired build');
        for (const build of report.networks) opts.log.warn({ build }, 'reconciler removed the network namespace of a closed build');
        for (const target of report.unmounted) opts.log.warn({ target }, 'reconciler unmounted an input view of a closed build');
      },
    },
    log: opts.log,
  });
}
