import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker, type WorkflowBundle } from '@temporalio/worker';
import type pino from 'pino';
import { createActivities } from '../activities';
import { workerTaskQueue } from '../activities/build';
import { reconcileBuilds } from '../activities/reconcile';
import { BuildPublisher, connectNats, ensureBuildStream } from '../common/nats';
import { WorkerPresence, workerBucket } from './registry';

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
  /** on shutdown or landing, how long running steps may finish here before they are handed over */
  drainMs?: number;
  /** look for leftovers of closed builds this often (off when absent) */
  reconcile?: { intervalMs: number; retentionMs: number };
  /** a prebuilt workflow bundle (tests bundle once); otherwise the worker bundles workflows/ itself */
  workflowBundle?: WorkflowBundle;
  log: pino.Logger;
}

export interface RunningWorker {
  name: string;
  taskQueue: string;
  /** resolves when both pollers stopped */
  done: Promise<void>;
  /** stops taking steps; running ones finish (up to drainMs) or are handed over */
  shutdown(): Promise<void>;
}

/**
 * A local-runtime worker: one poller on the shared queue (build workflows and the
 * activity that claims a build) and one on this worker's own queue, where every
 * step of the builds it claimed runs, next to their artifacts on this disk.
 */
export async function startLocalWorker(opts: LocalWorkerOptions): Promise<RunningWorker> {
  const name = opts.name ?? os.hostname();
  const nc = await connectNats(opts.natsUrl, `causeway-worker-${name}`);
  await ensureBuildStream(nc, opts.logMaxAgeSeconds);
  const running = new Set<string>();
  const activities = createActivities({
    home: opts.home,
    workerName: name,
    tags: opts.tags ?? [],
    nc,
    publisher: new BuildPublisher(nc, (what, err) => opts.log.warn({ err: err.message }, `NATS unreachable: dropped the live copy of the ${what}`)),
    log: opts.log,
    killGraceMs: opts.killGraceMs ?? 10_000,
    running,
  });
  const connection = await NativeConnection.connect({ address: opts.temporalAddress });
  const workflows = opts.workflowBundle
    ? { workflowBundle: opts.workflowBundle }
    : { workflowsPath: require.resolve(path.join(__dirname, '..', 'workflows')) };
  const common = {
    connection,
    namespace: opts.namespace,
    activities,
    // Cancellation reaches an activity with a heartbeat response: keep that within a second.
    maxHeartbeatThrottleInterval: '1 second',
    shutdownGraceTime: opts.drainMs ?? 10 * 60_000,
  } as const;
  const shared = await Worker.create({
    ...common,
    ...workflows,
    taskQueue: opts.taskQueue,
    // After a crash the server holds a build's next workflow task on the dead worker's sticky
    // queue for this long before any worker may take it (SDK default 10 s: most of the cost
    // of a crash in bench/recovery). A slow but live worker costs only a replay.
    stickyQueueScheduleToStartTimeout: '2 seconds',
  });
  const own = await Worker.create({ ...common, taskQueue: workerTaskQueue(name), maxConcurrentActivityTaskExecutions: 1000 });
  const presence = new WorkerPresence(nc, await workerBucket(nc), { name, tags: opts.tags ?? [], taskQueue: opts.taskQueue }, () => [...running], opts.log);
  let stopping = false;
  const shutdown = () => {
    if (stopping) return;
    stopping = true;
    shared.shutdown();
    own.shutdown();
  };
  await presence.start(() => {
    opts.log.info({ worker: name, running: running.size }, 'landing: taking no new steps');
    shutdown();
  });
  const stopReconciling = opts.reconcile ? await startReconciler(opts, opts.reconcile) : async () => undefined;
  const done = Promise.all([shared.run(), own.run()]).then(async () => {
    await stopReconciling();
    await presence.stop();
    await connection.close();
    await nc.close();
  });
  opts.log.info({ worker: name, taskQueue: opts.taskQueue, ownQueue: workerTaskQueue(name) }, 'worker started');
  return {
    name,
    taskQueue: opts.taskQueue,
    done,
    async shutdown() {
      shutdown();
      await done;
    },
  };
}

/** Periodically stops what closed builds left running and collects expired artifacts. */
async function startReconciler(opts: LocalWorkerOptions, cfg: { intervalMs: number; retentionMs: number }): Promise<() => Promise<void>> {
  const connection = await Connection.connect({ address: opts.temporalAddress });
  const client = new Client({ connection, namespace: opts.namespace });
  let pass: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    pass = pass.then(async () => {
      try {
        const report = await reconcileBuilds({ home: opts.home, client, retentionMs: cfg.retentionMs, killGraceMs: opts.killGraceMs ?? 10_000 });
        for (const s of report.stopped) opts.log.warn({ build: s.buildId, pid: s.pid, dir: s.dir }, 'reconciler stopped a process of a closed build');
        for (const dir of report.removed) opts.log.info({ dir }, 'reconciler removed the artifacts of an expired build');
        for (const build of report.networks) opts.log.warn({ build }, 'reconciler removed the network namespace of a closed build');
      } catch (err) {
        opts.log.warn({ err: (err as Error).message }, 'reconcile pass failed; will try again');
      }
    });
  }, cfg.intervalMs);
  return async () => {
    clearInterval(timer);
    await pass;
    await connection.close();
  };
}
