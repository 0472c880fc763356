import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';
import type { RunTaskResult } from '../activities/types';
import { ACTIVITY_FAILURES } from '../schemas/build';
import type { TaskStep } from '../schemas/compiled';
import { deadlineOf, StepError, type BuildContext, type Frame } from './context';
import { redactedValues } from './credentials';
import { withLocals } from './locals';
import { interpolateServices } from '../common/services';

/** `task`: runs the task's process on the build's worker; exit 0 is success. Outputs join the scope. */
export async function runTask(ctx: BuildContext, step: TaskStep, frame: Frame): Promise<boolean> {
  const missingTags = (step.tags ?? []).filter((t) => !ctx.workerTags.includes(t));
  if (missingTags.length > 0) {
    throw new StepError(`no worker has tags [${missingTags.join(', ')}]; the build's worker has [${ctx.workerTags.join(', ')}]`);
  }
  const resolved = withServiceAddresses(withLocals({ ...step, hooks: undefined, across: undefined, services: undefined }, frame), frame);
  const request = {
    buildId: ctx.buildId,
    runId: ctx.runId,
    plan: ctx.plan,
    step: resolved,
    runKey: frame.runKey,
    attempt: ctx.status.attempts(step.id),
    artifacts: frame.scope.allArtifacts(),
    services: frame.services,
    deadline: deadlineOf(frame),
    varSources: ctx.credentials?.varSources,
    ...(ctx.credentials?.pipeline !== undefined ? { pipeline: ctx.credentials.pipeline } : {}),
    redact: redactedValues(ctx.credentials, frame),
    ...(ctx.patched('task-failure-fails-activity') ? { failWhenTaskFails: true } : {}),
  };
  let result: RunTaskResult;
  const watched = ctx.workerWait?.schedule(step.id);
  try {
    // The summary names the step in the Temporal UI's timeline instead of "runTask".
    const options = { summary: `task ${step.task} · ${step.id}`, ...(watched ? { activityId: watched.activityId } : {}) };
    result = await ctx.acts.runTask.executeWithOptions(options, [request]);
  } catch (err) {
    const failed = failedTaskResult(err);
    if (!failed) throw err;
    result = failed;
  } finally {
    watched?.done();
  }
  for (const [name, ref] of Object.entries(result.outputs)) frame.scope.setArtifact(name, ref);
  ctx.releaser?.produced(result.outputs);
  ctx.status.exitCode(step.id, result.exitCode);
  return result.exitCode === 0;
}

/** The result a failed task's activity carries in its failure (activities/step/task.ts), or undefined for any other failure. */
function failedTaskResult(err: unknown): RunTaskResult | undefined {
  if (!(err instanceof ActivityFailure) || !(err.cause instanceof ApplicationFailure)) return undefined;
  if (err.cause.type !== ACTIVITY_FAILURES.taskFailed) return undefined;
  return err.cause.details?.[0] as RunTaskResult | undefined;
}

/** Fills in ((.svc:NAME.field)) from the services in scope (after local vars, which may name a service). */
function withServiceAddresses(step: TaskStep, frame: Frame): TaskStep {
  try {
    return interpolateServices(step, frame.services ?? {});
  } catch (err) {
    throw new StepError((err as Error).message);
  }
}
