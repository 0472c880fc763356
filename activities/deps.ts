import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import type pino from 'pino';
import type { BuildPublisher } from '../common/nats';

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
}

export const paths = {
  build: (home: string, buildId: string) => path.join(home, 'builds', buildId),
  inputs: (home: string, buildId: string, name: string) => path.join(home, 'builds', buildId, 'inputs', name),
  /** one directory per run of a step: the workflow run, the step id, the attempt key */
  step: (home: string, buildId: string, runId: string, stepId: string, runKey: string) =>
    path.join(home, 'builds', buildId, runId, stepId, runKey),
  cache: (home: string, plan: string, stepId: string) => path.join(home, 'caches', plan, stepId),
};

/** The failure type of an error no retry can fix; the step ends errored with its message. */
export const STEP_CONFIG_ERROR = 'StepConfigError';
