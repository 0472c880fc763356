// A worker whose runtime is the in-memory fake: the real pollers, activities and workflows.
import type { WorkflowBundle } from '@temporalio/worker';
import type pino from 'pino';
import { createActivities } from '../../activities';
import { BuildPublisher, connectNats, ensureBuildStream } from '../../common/nats';
import { startPollers, type RunningWorker } from '../../workers/pollers';
import { fakeRuntime, fakeState, type FakeState } from './runtime';

export interface FakeWorkerOptions {
  temporalAddress: string;
  natsUrl: string;
  home: string;
  name: string;
  tags?: string[];
  taskQueue: string;
  killGraceMs: number;
  workflowBundle: WorkflowBundle;
  log: pino.Logger;
}

/** The worker and what its runtime holds (the files at absolute paths its steps wrote, ...). */
export async function startFakeWorker(opts: FakeWorkerOptions): Promise<RunningWorker & { fake: FakeState }> {
  const nc = await connectNats(opts.natsUrl, `causeway-worker-${opts.name}`, { role: 'worker', home: opts.home });
  await ensureBuildStream(nc, 3600);
  const running = new Set<string>();
  const deps = {
    home: opts.home,
    workerName: opts.name,
    tags: opts.tags ?? [],
    nc,
    publisher: new BuildPublisher(nc),
    log: opts.log,
    killGraceMs: opts.killGraceMs,
    running,
  };
  const fake = fakeState();
  const worker = await startPollers({
    temporalAddress: opts.temporalAddress,
    namespace: 'default',
    home: opts.home,
    nc,
    name: opts.name,
    // The registry knows the real runtimes only; a fake worker lives as long as its test.
    runtime: 'local',
    tags: opts.tags ?? [],
    taskQueue: opts.taskQueue,
    activities: createActivities(deps, fakeRuntime(deps, fake)),
    workflowBundle: opts.workflowBundle,
    running,
    drainMs: 2000,
    log: opts.log,
  });
  return { ...worker, fake };
}
