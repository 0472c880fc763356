import os from 'node:os';
import path from 'node:path';
import { NativeConnection, Worker, type WorkflowBundle } from '@temporalio/worker';
import type pino from 'pino';
import { createActivities } from '../activities';
import { workerTaskQueue } from '../activities/build';
import { BuildPublisher, connectNats, ensureBuildStream } from '../common/nats';

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
  /** a prebuilt workflow bundle (tests bundle once); otherwise the worker bundles workflows/ itself */
  workflowBundle?: WorkflowBundle;
  log: pino.Logger;
}

export interface RunningWorker {
  name: string;
  taskQueue: string;
  /** resolves when both pollers stopped */
  done: Promise<void>;
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
  const activities = createActivities({
    home: opts.home,
    workerName: name,
    tags: opts.tags ?? [],
    nc,
    publisher: new BuildPublisher(nc),
    log: opts.log,
    killGraceMs: opts.killGraceMs ?? 10_000,
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
  } as const;
  const shared = await Worker.create({ ...common, ...workflows, taskQueue: opts.taskQueue });
  const own = await Worker.create({ ...common, taskQueue: workerTaskQueue(name), maxConcurrentActivityTaskExecutions: 1000 });
  const done = Promise.all([shared.run(), own.run()]).then(async () => {
    await connection.close();
    await nc.close();
  });
  opts.log.info({ worker: name, taskQueue: opts.taskQueue, ownQueue: workerTaskQueue(name) }, 'worker started');
  return {
    name,
    taskQueue: opts.taskQueue,
    done,
    async shutdown() {
      shared.shutdown();
      own.shutdown();
      await done;
    },
  };
}
