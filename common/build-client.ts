import { randomUUID } from 'node:crypto';
import { ApplicationFailure, CancelledFailure, TerminatedFailure, TimeoutFailure } from '@temporalio/common';
import { WorkflowFailedError, type Client, type WorkflowHandle, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import type { CompiledPlan } from '../schemas/compiled';
import type { BuildStatus } from '../schemas/messages';
import { BUILD_WORKFLOW, FAILURE_TYPES, type BuildInput, type BuildSummary } from '../schemas/build';

export function newBuildId(): string {
  return `build-${randomUUID()}`;
}

export async function startBuild(
  client: Client,
  opts: { plan: CompiledPlan; taskQueue: string; buildId?: string; uploads?: string[]; downloads?: string[] },
): Promise<WorkflowHandleWithFirstExecutionRunId> {
  const input: BuildInput = { plan: opts.plan, uploads: opts.uploads ?? [], downloads: opts.downloads ?? [] };
  const buildId = opts.buildId ?? newBuildId();
  try {
    return await client.workflow.start(BUILD_WORKFLOW, {
      taskQueue: opts.taskQueue,
      workflowId: buildId,
      args: [input],
      staticSummary: `${opts.plan.name} (${opts.plan.source})`,
      staticDetails: staticDetails(buildId, opts.taskQueue),
    });
  } catch (err) {
    throw new Error(startFailure(err), { cause: err });
  }
}

/**
 * What the Temporal UI's User Metadata tab shows under Details: where the rest of the build is.
 * Static (written once at start, by the client): a build no worker has picked up has nothing
 * else to say so, since only a worker can run the workflow code that writes Current Details.
 */
function staticDetails(buildId: string, taskQueue: string): string {
  return [
    `**Current Details empty?** Then no worker has started this build yet: the *Workers* tab lists who polls task queue \`${taskQueue}\` (nobody: start one with \`causeway worker\` or \`causeway dev up\`). The step tree appears there as soon as a worker runs the build.`,
    '**Step tree**: under *Current Details* (right): every step with its state, exit code and attempts, live while the build runs.',
    '**Failed steps**: red activities (`task NAME · STEP_ID`) in the History tab; the failure names the exit code and the last lines of the log.',
    `**Logs**: \`causeway watch ${buildId}\`.`,
    `**No progress?** A step scheduled but never started waits for the worker that claimed the build (*Pending Activities*); \`causeway status ${buildId}\` says why.`,
  ].join('\n\n');
}

/** Matches the gRPC message limit's and Temporal's blob size limit's wording. */
const TOO_LARGE = /larger than max|exceeds? (the )?limit|blob size|message size/i;

/**
 * The SDK says only "Failed to start Workflow"; the cause (a gRPC message or blob size limit,
 * an unknown namespace) is in the error's causes.
 */
export function startFailure(err: unknown): string {
  const messages: string[] = [];
  for (let e: unknown = err; e instanceof Error && messages.length < 5; e = e.cause) messages.push(e.message);
  const text = messages.join(': ') || String(err);
  return TOO_LARGE.test(text) ? `${text}. The build's input is too large for Temporal: move large data into an input with -i` : text;
}

export interface BuildOutcome {
  status: Exclude<BuildStatus, 'pending' | 'started'>;
  message?: string;
  summary?: BuildSummary;
}

/** Waits for a build and says how it ended, as Concourse would. */
export async function awaitBuild(handle: WorkflowHandle): Promise<BuildOutcome> {
  try {
    const summary = (await handle.result()) as BuildSummary;
    return { status: 'succeeded', summary };
  } catch (err) {
    return outcomeOf(err);
  }
}

export function outcomeOf(err: unknown): BuildOutcome {
  const cause = err instanceof WorkflowFailedError ? err.cause : err;
  if (cause instanceof CancelledFailure) return { status: 'aborted', message: 'aborted' };
  if (cause instanceof ApplicationFailure) {
    const summary = cause.details?.[0] as BuildSummary | undefined;
    const status = cause.type === FAILURE_TYPES.failed ? 'failed' : 'errored';
    return { status, message: cause.message, summary };
  }
  if (cause instanceof TerminatedFailure) return { status: 'errored', message: `terminated: ${cause.message}` };
  if (cause instanceof TimeoutFailure) return { status: 'errored', message: 'the build workflow timed out' };
  return { status: 'errored', message: (cause as Error)?.message ?? String(cause) };
}

/** What each way a build's workflow can close means when CausewayStatus was not set at its end. */
const CLOSED_AS: Record<string, BuildOutcome['status']> = {
  COMPLETED: 'succeeded',
  CANCELLED: 'aborted',
  FAILED: 'errored',
  TERMINATED: 'errored',
  TIMED_OUT: 'errored',
};

/**
 * A build's status as `causeway builds` shows it: CausewayStatus, unless the workflow closed
 * without setting it (terminated, timed out, or failed or cancelled before it could): then
 * the execution status from visibility decides (as outcomeOf does for a result). A build that
 * continued as new lives on in its next run. A closed build is never shown as running.
 */
export function buildStatusOf(attribute: string | undefined, execution: string): string {
  const final = attribute !== undefined && attribute !== 'started' && attribute !== 'pending';
  if (execution === 'RUNNING' || execution === 'CONTINUED_AS_NEW') return attribute ?? 'started';
  return final ? attribute : (CLOSED_AS[execution] ?? 'errored');
}

/**
 * The visibility query for builds with a status, matching buildStatusOf: a closed build whose
 * CausewayStatus lags counts by its execution status.
 */
export function statusClause(status: BuildOutcome['status'] | 'started'): string {
  const lagging = `(ExecutionStatus != 'Running' AND (CausewayStatus IS NULL OR CausewayStatus = 'started'))`;
  switch (status) {
    case 'started':
      return `ExecutionStatus = 'Running'`;
    case 'failed':
      return `CausewayStatus = 'failed'`;
    case 'succeeded':
      return `(CausewayStatus = 'succeeded' OR (ExecutionStatus = 'Completed' AND ${lagging}))`;
    case 'aborted':
      return `(CausewayStatus = 'aborted' OR (ExecutionStatus = 'Canceled' AND ${lagging}))`;
    case 'errored':
      return `(CausewayStatus = 'errored' OR (ExecutionStatus IN ('Failed', 'Terminated', 'TimedOut') AND ${lagging}))`;
  }
}
