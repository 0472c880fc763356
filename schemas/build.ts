// The build workflow's contract with its clients: its name, input, status query and failure types.
// Here, below common/ and workflows/, so the CLI and common/build-client.ts read it without
// importing workflow code.
import type { ResourceVersion, StepKind } from './compiled';
import type { BuildStatus, ServiceState, StepState } from './messages';

export const BUILD_WORKFLOW = 'build';
/** The child workflow that runs a slice of a big list of steps (see workflows/fanout.ts). */
export const PART_WORKFLOW = 'buildPart';

export type { BuildInput } from './compiled';

export interface StepStatus {
  id: string;
  parent?: string;
  /** a step's kind, or `service` for a service of the step that is its parent */
  kind: StepKind | 'service';
  name: string;
  /** for a service: running while it starts, probes, serves and stops; succeeded once stopped; errored when it failed */
  state: StepState;
  /** a service's own state and its address (host:port) */
  service?: { state: ServiceState; address?: string };
  attempts: number;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  message?: string;
  /** a get's or put's resource and the version it fetched or made (a pipeline counts a put's as the build's output) */
  resource?: { name: string; version: ResourceVersion };
}

export interface BuildSummary {
  buildId: string;
  plan: string;
  status: BuildStatus;
  message?: string;
  startedAt: string;
  finishedAt?: string;
  steps: StepStatus[];
  /** child workflows holding slices of big lists: their steps are in their own `status` */
  parts?: PartRef[];
}

/** A slice of a list step (items `from` to `to` - 1) run by a child workflow. */
export interface PartRef {
  workflowId: string;
  /** the list step (do, in_parallel, across) the slice belongs to */
  parent: string;
  from: number;
  to: number;
  /** skipped: never started (fail_fast, an earlier failure in a `do`, an abort) */
  state: StepState;
}

/**
 * Failure types of the step activities (activities/errors.ts makes them, the workflow reads them):
 * a step that cannot run ends errored and is not retried; a service that never got ready fails
 * its step; a worker shutting down hands the step over to a retried activity; a task that exited
 * non-zero fails its activity so the Temporal UI shows it failed.
 */
export const ACTIVITY_FAILURES = {
  stepErrored: 'StepConfigError',
  serviceFailed: 'ServiceFailed',
  workerShutdown: 'WorkerShutdown',
  /** a task exited non-zero: the step failed (not errored); the details carry its RunTaskResult */
  taskFailed: 'TaskFailed',
} as const;

/** Failure types the workflow ends with, read by the CLI to pick its exit code. */
export const FAILURE_TYPES = { failed: 'BuildFailed', errored: 'BuildErrored' } as const;

/** How the terminal and the Temporal UI's details mark each step state. */
export const STATE_MARKS: Record<StepState, string> = {
  pending: '○',
  running: '◐',
  succeeded: '✔',
  failed: '✘',
  errored: '⚠',
  aborted: '■',
  skipped: '–',
};
