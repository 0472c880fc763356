import {
  ActivityCancellationType,
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  isCancellation,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Artifacts, BuildActivities, PrepareBuildResult } from '../activities/types';
import {
  CausewayBuildNumber,
  CausewayJob,
  CausewayPipeline,
  CausewayPlan,
  CausewayRetryOf,
  CausewayStatus,
} from '../common/search-attributes';
import type { JobBuildRef } from '../schemas/pipeline-api';
import { BuildInputError, parseBuildInput } from '../schemas/build-input';
import type { BuildStatus } from '../schemas/messages';
import { messageOf } from './attempts';
import { Scope, type BuildContext } from './context';
import { buildCredentials, secretLocalNames } from './credentials';
import { ArtifactReleaser } from './release';
import { StatusTracker } from './status';
import { runStep } from './step';
import { WorkerWait } from './waiting';
import { imageTypesOf } from './resource';
import { decidePatches } from './patches';
import { ACTIVITY_FAILURES, FAILURE_TYPES, type BuildInput, type BuildSummary, type StepStatus } from '../schemas/build';

export const statusQuery = defineQuery<BuildSummary>('status');

/** Errors that no retry of the activity can fix (bad task config, missing input, a service that never got ready). */
export const NON_RETRYABLE = [ACTIVITY_FAILURES.stepErrored, ACTIVITY_FAILURES.serviceFailed];

/** The activities of a build's steps, on the task queue of the worker that claimed the build. */
export function stepActivities(taskQueue: string) {
  return proxyActivities<BuildActivities>({
    taskQueue,
    // Step timeouts belong to the plan; this only bounds a runaway activity.
    startToCloseTimeout: '7 days',
    // A dead worker is noticed in seconds, and the retried activity re-attaches to its step.
    // Activities heartbeat every second (see workers/local.ts), so 5 s allows a few misses.
    heartbeatTimeout: '5 seconds',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { maximumAttempts: 20, initialInterval: '200 ms', maximumInterval: '5 seconds', nonRetryableErrorTypes: NON_RETRYABLE },
  });
}

/**
 * The build: walks the compiled plan and ends succeeded (returns), failed or
 * errored (fails with BuildFailed / BuildErrored, so the Temporal UI shows it in
 * red), or aborted (cancelled). Holds only references: artifact locations and states.
 */
export async function build(raw: BuildInput): Promise<BuildSummary> {
  const patches = decidePatches();
  const input = validInput(raw);
  const info = workflowInfo();
  const root = CancellationScope.current();
  const status = new StatusTracker(input.plan.name);
  const summary: BuildSummary = {
    buildId: info.workflowId,
    plan: input.plan.name,
    status: 'started',
    startedAt: new Date().toISOString(),
    steps: [],
  };
  setHandler(statusQuery, () => ({ ...summary, steps: status.list(), parts: status.parts() }));
  upsertSearchAttributes([
    { key: CausewayStatus, value: 'started' },
    { key: CausewayPlan, value: input.plan.name },
  ]);

  // A local activity: it claims the build for the worker running this workflow task (whose
  // own-queue poller lives in the same process), without a server round trip and a workflow
  // task of its own before the first step. A worker that dies in it is noticed when this
  // workflow task times out (the SDK keeps the task alive while it runs); the next worker reruns it.
  const claim = proxyLocalActivities<BuildActivities>({
    // Downloading the CLI's uploads (-i) can take long.
    startToCloseTimeout: '10 minutes',
    // Its backoffs (1 s to 8 s) stay under the default localRetryThreshold (1 minute): retried in the worker.
    retry: { maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
  });
  let prepared: PrepareBuildResult;
  const jobBuild = jobBuildOf();
  try {
    prepared = await claim.prepareBuild({
      buildId: info.workflowId,
      plan: input.plan.name,
      ...(jobBuild ? { pipeline: jobBuild.pipeline } : {}),
      uploads: input.uploads,
      varSources: input.plan.varSources,
      deferredVars: input.plan.deferredVars,
      ...imageTypesOf(input.plan),
    });
  } catch (err) {
    // Ending before the first step must still say so in CausewayStatus, or `causeway builds` shows it started forever.
    const outcome = isCancellation(err) ? 'aborted' : 'errored';
    upsertSearchAttributes([{ key: CausewayStatus, value: outcome }]);
    Object.assign(summary, { status: outcome, message: messageOf(err), finishedAt: new Date().toISOString() });
    if (outcome === 'aborted') throw err;
    throw ApplicationFailure.create({
      type: FAILURE_TYPES.errored,
      message: summary.message ?? outcome,
      nonRetryable: true,
      details: [summary],
    });
  }
  const onWorker = stepActivities(prepared.taskQueue);

  const scope = new Scope();
  for (const [name, ref] of Object.entries(prepared.artifacts)) scope.setArtifact(name, ref);
  const releaser = prepared.releasesArtifacts
    ? new ArtifactReleaser(input.plan.plan, input.downloads, (refs, names) =>
        // An abort must not stop a release half-way; the build's end waits for it.
        CancellationScope.nonCancellable(() =>
          onWorker.releaseArtifacts.executeWithOptions({ summary: `release ${names.join(', ')}` }, [
            { buildId: info.workflowId, refs, names },
          ]),
        ),
      )
    : undefined;
  const ctx: BuildContext = {
    buildId: info.workflowId,
    runId: info.runId,
    plan: input.plan.name,
    workerTags: prepared.tags,
    taskQueue: prepared.taskQueue,
    acts: onWorker,
    servicesAllocated: 0,
    status,
    failedInParts: [],
    aborted: () => root.consideredCancelled,
    run: (step, frame) => runStep(ctx, step, frame),
    releaser,
    credentials: buildCredentials(input.plan.varSources, secretLocalNames(input.plan.plan), jobBuild?.pipeline),
    jobBuild,
    // In this order: builds started before decidePatches ask for these here, one after the other.
    workerWait: patches('worker-wait-note') ? new WorkerWait(status, prepared.taskQueue) : undefined,
    leanWrappers: patches('lean-step-wrappers'),
    patched: patches,
  };

  let outcome: BuildStatus;
  let error: unknown;
  try {
    outcome = (await ctx.run(input.plan.plan, { scope, runKey: '1' })) ? 'succeeded' : 'failed';
  } catch (err) {
    error = err;
    outcome = isCancellation(err) ? 'aborted' : 'errored';
    summary.message = messageOf(err);
  }
  if (outcome === 'failed') summary.message = failedSteps(summary, status, ctx.failedInParts);
  summary.status = outcome;
  summary.finishedAt = new Date().toISOString();

  await CancellationScope.nonCancellable(async () => {
    await releaser?.settled();
    // A reset (causeway retry) keeps the original run id on the start event: record the lineage.
    const retryOf = info.runId !== info.originalExecutionRunId ? [{ key: CausewayRetryOf, value: info.originalExecutionRunId }] : [];
    upsertSearchAttributes([{ key: CausewayStatus, value: outcome }, ...retryOf]);
    try {
      await onWorker.finishBuild({
        buildId: info.workflowId,
        runId: info.runId,
        status: outcome,
        message: summary.message,
        exports: pick(scope.allArtifacts(), input.downloads),
      });
    } catch (err) {
      // The build's result is already decided; failing to hand over outputs is reported, not a new result.
      summary.message = `${summary.message ? `${summary.message}; ` : ''}could not export outputs: ${messageOf(err)}`;
    }
  });

  const result = { ...summary, steps: status.list(), parts: status.parts() };
  if (outcome === 'succeeded') return result;
  if (outcome === 'aborted') throw error;
  throw ApplicationFailure.create({
    type: outcome === 'failed' ? FAILURE_TYPES.failed : FAILURE_TYPES.errored,
    message: summary.message ?? outcome,
    nonRetryable: true,
    details: [result],
  });
}

/**
 * Any client can start a build: an input that is not a compiled plan fails the workflow at
 * once and for good (a throw that is not a Temporal failure would fail the workflow task
 * instead, retried forever), with CausewayStatus errored like any build that errored.
 */
function validInput(raw: unknown): BuildInput {
  try {
    return parseBuildInput(raw, workflowInfo().workflowId);
  } catch (err) {
    if (!(err instanceof BuildInputError)) throw err;
    upsertSearchAttributes([{ key: CausewayStatus, value: 'errored' }]);
    throw ApplicationFailure.create({ type: FAILURE_TYPES.errored, message: err.message, nonRetryable: true });
  }
}

function failedSteps(summary: BuildSummary, status: StatusTracker, inParts: string[]): string {
  const failed = [...failedTasks(status), ...inParts];
  return failed.length > 0 ? `${failed.join(', ')} failed` : (summary.message ?? 'failed');
}

/** Failed steps of the tracker as the build's message names them: a timed-out step of any kind with its message, a task with its exit code. */
export function failedTasks(status: StatusTracker): string[] {
  const steps = status.list();
  const byId = new Map(steps.map((s) => [s.id, s]));
  // A failure inside `try` is swallowed there: it is not why the build failed.
  const insideTry = (s: StepStatus): boolean => {
    for (let p = s.parent && byId.get(s.parent); p; p = p.parent ? byId.get(p.parent) : undefined) if (p.kind === 'try') return true;
    return false;
  };
  return steps
    .filter((s) => s.state === 'failed' && (s.kind === 'task' || s.message) && !insideTry(s))
    .map((s) => (s.message ? `${s.name}: ${s.message}` : `${s.name} (exit ${s.exitCode ?? '?'})`));
}

/** The pipeline, job and number the pipeline started this build with (activities/pipeline.ts startJobBuild). */
function jobBuildOf(): JobBuildRef | undefined {
  const attrs = workflowInfo().typedSearchAttributes;
  const pipeline = attrs.get(CausewayPipeline);
  const job = attrs.get(CausewayJob);
  const number = Number(attrs.get(CausewayBuildNumber));
  return pipeline && job && Number.isInteger(number) ? { pipeline, job, number, startedAt: workflowInfo().startTime.getTime() } : undefined;
}

function pick(artifacts: Artifacts, names: string[]): Artifacts {
  return Object.fromEntries(names.filter((n) => artifacts[n]).map((n) => [n, artifacts[n]]));
}
