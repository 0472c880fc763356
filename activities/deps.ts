import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import type pino from 'pino';
import type { BuildPublisher } from '../common/nats';
import type { WorkerCredentials } from './creds';
import { segment } from './safe-path';

/** What every activity of a worker shares. */
export interface ActivityDeps {
  home: string;
  workerName: string;
  tags: string[];
  nc: NatsConnection;
  publisher: BuildPublisher;
  log: pino.Logger;
  /** SIGTERM → SIGKILL grace period for aborted steps */
  killGraceMs: number;
  /** `<build>/<step>` of the steps running on this worker now, for the worker registry */
  running: Set<string>;
  /** the worker's cluster-wide credential manager and redaction (default: none, redaction on, team main) */
  credentials?: WorkerCredentials;
}

export const NO_CREDENTIALS: WorkerCredentials = { team: 'main', redact: true };

/** Directories under CAUSEWAY_HOME; every name from a build or a plan must be one path segment, so none leaves it. */
export const paths = {
  build: (home: string, buildId: string) => path.join(home, 'builds', segment(buildId, 'build id')),
  inputs: (home: string, buildId: string, name: string) => path.join(paths.build(home, buildId), 'inputs', segment(name, 'input')),
  /** one directory per run of a step: the workflow run, the step id, the attempt key */
  step: (home: string, buildId: string, runId: string, stepId: string, runKey: string) =>
    path.join(paths.build(home, buildId), segment(runId, 'run id'), segment(stepId, 'step id'), segment(runKey, 'run key')),
  /**
   * A step's cache, across builds: a job build's under its pipeline and job, a one-off build's
   * under its plan, so a one-off build named like a job cannot write into the cache the job's
   * next build reads (Concourse's one-off builds get no job caches either).
   */
  cache: (home: string, plan: string, stepId: string, pipeline?: string) =>
    pipeline === undefined
      ? path.join(home, 'caches', 'plans', segment(plan, 'plan name'), segment(stepId, 'step id'))
      : path.join(home, 'caches', 'jobs', segment(pipeline, 'pipeline name'), segment(plan, 'job name'), segment(stepId, 'step id')),
};

/** The failure type of an error no retry can fix; the step ends errored with its message. */
export const STEP_CONFIG_ERROR = 'StepConfigError';
