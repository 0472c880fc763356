import { workflowInfo } from '@temporalio/workflow';
import type { SetPipelineStep } from '../schemas/compiled';
import { findVarRefs } from '../schemas/interpolate';
import { checkName } from '../schemas/names';
import { pipelineNameOf } from '../schemas/pipeline-api';
import { StepError, type BuildContext, type Frame } from './context';
import { credentialsPipeline } from './credentials';
import { withLocals } from './locals';

/**
 * `set_pipeline`: sets a pipeline from a file of an artifact, as Concourse's SetPipelineStep:
 * the activity compiles the file (an invalid one fails the step, its problems in the log),
 * prints the diff against the running config, and sets it the way `causeway set-pipeline` does.
 * `self` is the pipeline whose job runs the build.
 */
export async function runSetPipeline(ctx: BuildContext, raw: SetPipelineStep, frame: Frame): Promise<boolean> {
  const step = withLocals({ ...raw, hooks: undefined, across: undefined }, frame);
  let pipeline = step.pipeline;
  let self: string | undefined;
  if (pipeline === 'self') {
    self = ctx.jobBuild?.pipeline;
    if (!self) throw new StepError('set_pipeline: self sets the pipeline whose job runs it; this build is not a job of a pipeline');
    // The build knows its pipeline's key; an instance's vars are the activity's to look up.
    pipeline = pipelineNameOf(self);
  }
  // A name still holding a credential ref is resolved, then checked, by the activity.
  const bad = findVarRefs(pipeline).length > 0 ? undefined : checkName('pipeline', pipeline);
  if (bad) throw new StepError(`set_pipeline: ${bad}`);
  const { ok } = await ctx.acts.setPipeline.executeWithOptions({ summary: `set_pipeline ${pipeline} · ${step.id}` }, [
    {
      buildId: ctx.buildId,
      runId: ctx.runId,
      runKey: frame.runKey,
      attempt: ctx.status.attempts(step.id),
      step: { ...step, pipeline },
      ...(self !== undefined ? { self } : {}),
      ...(ctx.credentials?.varSources ? { varSources: ctx.credentials.varSources } : {}),
      credentialsPipeline: credentialsPipeline(ctx),
      artifacts: frame.scope.allArtifacts(),
      // Pipelines run on the queue the build was started on (the one the pipeline itself runs on).
      pipelineTaskQueue: workflowInfo().taskQueue,
      // Which build sets it: a pipeline a newer build set refuses this one (Concourse's ErrSetByNewerBuild).
      by: ctx.jobBuild,
    },
  ]);
  if (!ok) ctx.status.note(step.id, `${pipeline} is not a valid pipeline; its problems are in the step's log`);
  return ok;
}
