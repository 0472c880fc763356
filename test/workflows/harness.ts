import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { WorkflowBundle } from '@temporalio/worker';
import type { NatsConnection } from '@nats-io/transport-node';
import pino from 'pino';
import type { WorkerCredentials } from '../../activities/creds';
import { awaitBuild, startBuild, type BuildOutcome } from '../../common/build-client';
import { collectLogs } from '../../common/build-log';
import { bundleBuildWorkflows } from '../../workers/bundle';
import { connectNats } from '../../common/nats';
import { connectTemporalClient } from '../../common/temporal-connection';
import { compilePlan } from '../../schemas';
import { startLocalWorker, type ContainerdRuntimeOptions, type RunningWorker } from '../../workers/local';
import type { FakeState } from '../fake/runtime';
import { startFakeWorker } from '../fake/worker';
import { WORKER_STALLED_MS, type WorkerRecord } from '../../schemas/workers';
import { testStack } from '../setup/env';

// `testTimeout` in jest.config.js is a global option that a project entry ignores:
// every file using the harness gets the generous timeout real builds need.
jest.setTimeout(120_000);

/** Workflow code is bundled once per test run and shared by every test file through a file in the run's home. */
export async function sharedBundle(home: string): Promise<WorkflowBundle> {
  const file = path.join(home, 'workflow-bundle.js');
  try {
    return { code: await fs.readFile(file, 'utf8') };
  } catch {
    const bundle = await bundleBuildWorkflows();
    await fs.writeFile(file, bundle.code);
    return bundle;
  }
}

export interface Harness {
  client: Client;
  nc: NatsConnection;
  worker: RunningWorker;
  /** the fake runtime's state (runtime: 'fake') */
  fake?: FakeState;
  taskQueue: string;
  home: string;
  /** compiles and runs a plan, waiting for the end */
  run(yaml: string, opts?: RunOptions): Promise<BuildRun>;
  /** compiles and starts a plan without waiting: for abort, queries, search attributes */
  start(yaml: string, opts?: RunOptions): Promise<WorkflowHandle>;
  /** waits for a started build's end and collects its logs */
  finish(handle: WorkflowHandle): Promise<BuildRun>;
  stop(): Promise<void>;
}

export interface RunOptions {
  vars?: Record<string, unknown>;
  /** the job of a pipeline to run, and the file the plan says it came from (resource type directories are relative to it) */
  job?: string;
  file?: string;
  uploads?: string[];
  downloads?: string[];
  /** leave ((vars)) the plan's vars do not give to the worker's credential manager */
  deferUnsourced?: boolean;
}

export interface BuildRun extends BuildOutcome {
  buildId: string;
  logs: Map<string, string>;
}

export interface HarnessOptions {
  killGraceMs?: number;
  tags?: string[];
  /** `fake`: steps run in memory (test/fake/), for the workflow-semantics tests; `local` (default): host processes */
  runtime?: 'local' | 'fake';
  /** the local worker runs its steps in containerd containers */
  containerd?: ContainerdRuntimeOptions;
  /** the local worker's cluster-wide credential manager and redaction */
  credentials?: WorkerCredentials;
}

/** A real worker on its own task queue against the run's real Temporal and NATS. */
export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const stack = testStack();
  const taskQueue = `test-${randomUUID()}`;
  const common = {
    temporalAddress: stack.temporalAddress,
    natsUrl: stack.natsUrl,
    home: stack.home,
    name: `w-${randomUUID().slice(0, 8)}`,
    tags: opts.tags,
    taskQueue,
    killGraceMs: opts.killGraceMs ?? 2000,
    workflowBundle: await sharedBundle(stack.home),
    log: pino({ level: 'warn' }),
  };
  const fakeWorker = opts.runtime === 'fake' ? await startFakeWorker(common) : undefined;
  const worker =
    fakeWorker ??
    (await startLocalWorker({
      ...common,
      namespace: 'default',
      logMaxAgeSeconds: 3600,
      drainMs: 2000,
      containerd: opts.containerd,
      credentials: opts.credentials,
    }));
  const { client, connection } = await connectTemporalClient({ address: stack.temporalAddress, home: stack.home });
  const nc = await connectNats(stack.natsUrl, 'test');
  const start = async (yaml: string, runOpts: RunOptions = {}) => {
    const plan = compilePlan({
      text: yaml,
      file: runOpts.file ?? 'test.yml',
      job: runOpts.job,
      vars: runOpts.vars,
      deferUnsourced: runOpts.deferUnsourced,
    });
    return startBuild(client, { plan, taskQueue, uploads: runOpts.uploads, downloads: runOpts.downloads });
  };
  const finish = async (handle: WorkflowHandle): Promise<BuildRun> => {
    const outcome = await awaitBuild(handle);
    return { ...outcome, buildId: handle.workflowId, logs: await collectLogs(nc, handle.workflowId) };
  };
  return {
    client,
    nc,
    worker,
    fake: fakeWorker?.fake,
    taskQueue,
    home: stack.home,
    start,
    finish,
    async run(yaml, runOpts = {}) {
      return finish(await start(yaml, runOpts));
    },
    async stop() {
      await worker.shutdown();
      await nc.close();
      await connection.close();
    },
  };
}

/** A one-task step in YAML (a flow map, so it nests anywhere): `sh -c script`. */
export function sh(name: string, script: string, extra: Record<string, unknown> = {}, config: Record<string, unknown> = {}): string {
  return JSON.stringify({ task: name, config: { platform: 'linux', run: { path: 'sh', args: ['-c', script] }, ...config }, ...extra });
}

/** Polls until `check` returns a value other than undefined/false; throws after `ms` (a generous wait, not a timing assertion). */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  ms = 60_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** pids of processes whose command line contains `marker` (pgrep -f), excluding pgrep itself. */
export function pidsMatching(marker: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', marker], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number)
      .filter((pid) => pid !== process.pid);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

/** Kills whatever a test left behind by its unique marker (safety net for failed assertions). */
export function killMatching(marker: string): void {
  for (const pid of pidsMatching(marker)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** A marker unique to one test, for commands found with pgrep. */
export function marker(tag: string): string {
  return `cw-${tag}-${randomUUID().slice(0, 8)}`;
}

/** The registry record a worker that died leaves behind: no longer refreshed, so shown as stalled. */
export function stalledWorkerRecord(name: string): WorkerRecord {
  const heard = new Date(Date.now() - WORKER_STALLED_MS - 1000).toISOString();
  return {
    name,
    runtime: 'local',
    host: 'h',
    pid: 1,
    tags: [],
    state: 'running',
    taskQueue: 'q',
    running: [],
    startedAt: heard,
    heartbeatAt: heard,
  };
}
