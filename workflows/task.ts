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
  // The summary names the step in the Temporal UI's timeline instead of "runTask".
  const result = await ctx.acts.runTask.executeWithOptions({ summary: `task ${step.task} · ${step.id}` }, [
    {
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
      redact: redactedValues(ctx.credentials, frame),
    },
  ]);
  for (const [name, ref] of Object.entries(result.outputs)) frame.scope.setArtifact(name, ref);
  ctx.releaser?.produced(result.outputs);
  ctx.status.exitCode(step.id, result.exitCode);
  return result.exitCode === 0;
}

/** Fills in ((.svc:NAME.field)) from the services in scope (after local vars, which may name a service). */
function withServiceAddresses(step: TaskStep, frame: Frame): TaskStep {
  try {
    return interpolateServices(step, frame.services ?? {});
  } catch (err) {
    throw new StepError((err as Error).message);
  }
}
