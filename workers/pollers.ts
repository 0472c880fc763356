import type { NatsConnection } from '@nats-io/transport-node';
import type { Client } from '@temporalio/client';
import os from 'node:os';
import path from 'node:path';
import { NativeConnection, Worker, type WorkflowBundle } from '@temporalio/worker';
import type pino from 'pino';
import { workerTaskQueue } from '../activities/build';
import { causewayDataConverter, loadCodecKeys } from '../common/codec';
import { retryConnect, WORKER_CONNECT_PATIENCE_MS } from '../common/connect-retry';
import { connectNats } from '../common/nats';
import { connectTemporalClient, temporalSecurity } from '../common/temporal-connection';
import type { WorkerRecord } from '../schemas/workers';
import { WorkerPresence, workerBucket } from './registry';
import { WORKFLOW_BUNDLER_OPTIONS } from './bundle';

export interface PollerOptions {
  temporalAddress: string;
  namespace: string;
  /** where the payload codec's keys live when no CAUSEWAY_CODEC_KEY[S] is set */
  home: string;
  nc: NatsConnection;
  /** stable across restarts, so a restarted worker picks up its builds' steps */
  name: string;
  runtime: WorkerRecord['runtime'];
  tags: string[];
  /** the queue builds are submitted to */
  taskQueue: string;
  activities: object;
  /** a prebuilt workflow bundle (tests bundle once); otherwise workflows/ is bundled at start */
  workflowBundle?: WorkflowBundle;
  /** `<build>/<step>` of the steps running now, for the registry */
  running: Set<string>;
  /** on shutdown or landing, how long running steps may finish here before they are handed over */
  drainMs?: number;
  /** a pass over leftovers of closed builds, run every intervalMs (off when absent) */
  reconcile?: { intervalMs: number; pass: (client: Client) => Promise<void> };
  log: pino.Logger;
}

const STEPS_PER_CPU = 100;

/**
 * What one worker takes on at once, whatever the plans ask (max_in_flight is only an upper
 * bound; big lists run in parts of PART_BUDGET, workflows/fanout.ts): steps (activity slots
 * on its own queue), workflow tasks in progress, and workflows kept in memory between their
 * tasks. All of a 10,000-step build in flight is 101 workflows (the build and its parts) and
 * 10,000 steps queued for these slots. bench:fanout measures the worker's memory under them.
 */
export const WORKER_LIMITS = {
  /**
   * The worker's main thread supervises every running step (polls its files, heartbeats each
   * second): 1,000 at once on a loaded 2-core machine (load ~20) starved it, heartbeats came
   * late, and 332 of the first ~6,000 steps of an all-in-flight across of 10,000 timed out and
   * were retried (bench:fanout); so a number per CPU.
   */
  steps: STEPS_PER_CPU * os.availableParallelism(),
  /** each workflow task waits for the one workflow thread: more slots only queue there, past its timeout */
  workflowTasks: 40,
  /** ~1 MB each (the SDK's own estimate); an evicted workflow is replayed from its history on its next task */
  cachedWorkflows: 1000,
};

/** A started worker of either runtime. */
export interface RunningWorker {
  name: string;
  taskQueue: string;
  /** resolves when both pollers stopped and the worker's connections are closed */
  done: Promise<void>;
  /** stops taking steps; running ones finish (up to drainMs) or are handed over */
  shutdown(): Promise<void>;
}

/** A worker's NATS connection, waiting for a NATS that is starting or restarting as it waits for Temporal. */
export function connectWorkerNats(url: string, name: string, home: string, log: pino.Logger): Promise<NatsConnection> {
  return retryConnect(
    `NATS at ${url}`,
    () => connectNats(url, `causeway-worker-${name}`, { role: 'worker', home }),
    (line) => log.warn(line),
    WORKER_CONNECT_PATIENCE_MS,
  );
}

/**
 * What every runtime's worker shares: one poller on the shared queue (build workflows, and
 * the local activity that claims a build for this worker) and one on the worker's own queue,
 * where every step of the builds it claimed runs; its entry in the worker registry; landing
 * and shutdown.
 */
export async function startPollers(opts: PollerOptions): Promise<RunningWorker> {
  const keys = loadCodecKeys({ home: opts.home });
  if (!keys)
    opts.log.warn(
      'no payload codec key (CAUSEWAY_CODEC_KEYS or CAUSEWAY_HOME/codec-keys.json): payloads, vars included, are stored in Temporal in clear',
    );
  const connection = await retryConnect(
    `Temporal at ${opts.temporalAddress}`,
    () => NativeConnection.connect({ address: opts.temporalAddress, ...temporalSecurity() }),
    (line) => opts.log.warn(line),
    WORKER_CONNECT_PATIENCE_MS,
  );
  const workflows = opts.workflowBundle
    ? { workflowBundle: opts.workflowBundle }
    : { workflowsPath: require.resolve(path.join(__dirname, '..', 'workflows')), bundlerOptions: WORKFLOW_BUNDLER_OPTIONS };
  const common = {
    connection,
    namespace: opts.namespace,
    dataConverter: causewayDataConverter(keys),
    activities: opts.activities,
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
    // Its activities run only as local activities (prepareBuild, and a pipeline's checks and
    // build starts, in the workflow task that asks for them): nothing is ever scheduled on the
    // shared queue for it to poll.
    enableNonLocalActivities: false,
    maxConcurrentWorkflowTaskExecutions: WORKER_LIMITS.workflowTasks,
    maxCachedWorkflows: WORKER_LIMITS.cachedWorkflows,
  });
  const own = await Worker.create({
    ...common,
    taskQueue: workerTaskQueue(opts.name),
    maxConcurrentActivityTaskExecutions: WORKER_LIMITS.steps,
  });
  let stopping = false;
  const shutdown = () => {
    if (stopping) return;
    stopping = true;
    shared.shutdown();
    own.shutdown();
  };
  const presence = new WorkerPresence(
    opts.nc,
    await workerBucket(opts.nc),
    { name: opts.name, runtime: opts.runtime, tags: opts.tags, taskQueue: opts.taskQueue },
    () => [...opts.running],
    opts.log,
  );
  await presence.start((action) => {
    opts.log.info(
      { worker: opts.name, running: opts.running.size },
      `${action === 'retire' ? 'retiring' : 'landing'}: taking no new steps`,
    );
    shutdown();
  });
  const reconcile = opts.reconcile;
  const stopReconciling = reconcile
    ? await startReconcileLoop({ ...opts, intervalMs: reconcile.intervalMs }, reconcile.pass)
    : async () => undefined;
  const done = Promise.all([shared.run(), own.run()]).then(async () => {
    await stopReconciling();
    await presence.stop();
    await connection.close();
    await opts.nc.close();
  });
  opts.log.info(
    { worker: opts.name, runtime: opts.runtime, taskQueue: opts.taskQueue, ownQueue: workerTaskQueue(opts.name) },
    'worker started',
  );
  return {
    name: opts.name,
    taskQueue: opts.taskQueue,
    done,
    async shutdown() {
      shutdown();
      await done;
    },
  };
}

/**
 * Runs a reconcile pass every `intervalMs` with a Temporal client of its own (to ask which
 * builds are closed); passes never overlap, and a failed one is logged and tried again.
 * Resolves to a function that stops the loop after the pass in progress.
 */
async function startReconcileLoop(
  opts: { temporalAddress: string; namespace: string; home: string; intervalMs: number; log: pino.Logger },
  pass: (client: Client) => Promise<void>,
): Promise<() => Promise<void>> {
  const { client, connection } = await retryConnect(
    `Temporal at ${opts.temporalAddress}`,
    () => connectTemporalClient({ address: opts.temporalAddress, namespace: opts.namespace, home: opts.home }),
    (line) => opts.log.warn(line),
    WORKER_CONNECT_PATIENCE_MS,
  );
  let running: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(() =>
      pass(client).catch((err) => opts.log.warn({ err: (err as Error).message }, 'reconcile pass failed; will try again')),
    );
  }, opts.intervalMs);
  return async () => {
    clearInterval(timer);
    await running;
    await connection.close();
  };
}
