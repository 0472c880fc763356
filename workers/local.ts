import os from 'node:os';
import path from 'node:path';
import { NativeConnection, Worker, type WorkflowBundle } from '@temporalio/worker';
import type pino from 'pino';
import { createActivities } from '../activities';
import { workerTaskQueue } from '../activities/build';
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
  const shared = await Worker.create({ ...common, ...workflows, taskQueue: opts.taskQueue });
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
  const done = Promise.all([shared.run(), own.run()]).then(async () => {
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
