import { getExternalWorkflowHandle, isCancellation } from '@temporalio/workflow';
import type { PutStep, ResourceVersion } from '../schemas/compiled';
import { PIPELINE_SIGNALS, pipelineWorkflowId, type SavedOutput } from '../schemas/pipeline-api';
import { StepError, type BuildContext, type Frame } from './context';
import { withLocals } from './locals';
import { fetchVersion, runResourceScript, versionOf } from './resource';

/**
 * `put`: runs the resource's `out` with the chosen artifacts in its directory, then (unless
 * `no_get`) fetches the version it made into the artifact `put:` names, as Concourse's
 * implicit get after a put does, with `get_params`.
 */
export async function runPut(ctx: BuildContext, raw: PutStep, frame: Frame): Promise<boolean> {
  const step = withLocals({ ...raw, hooks: undefined, across: undefined }, frame);
  const available = Object.keys(frame.scope.allArtifacts());
  const inputs = step.inputs === 'all' ? available : step.inputs === 'detect' ? detectInputs(step.params, available) : step.inputs;
  const missing = inputs.filter((n) => !available.includes(n));
  if (missing.length > 0) {
    throw new StepError(`put ${step.name}: no artifact ${missing.join(', ')} in scope (available: ${available.join(', ') || 'none'})`);
  }
  const { response } = await runResourceScript(ctx, step, frame, {
    script: 'out',
    request: { source: step.resource.source, params: step.params },
    inputs,
  });
  const version = versionOf(step.resource.name, 'out', response);
  ctx.status.resource(step.id, step.resource.name, version);
  await saveOutput(ctx, step.resource.name, version);
  if (!step.noGet) await fetchVersion(ctx, step, frame, version, step.getParams);
  return true;
}

/**
 * Concourse's SaveOutput: a job build's put gives its pipeline the version it made as soon as
 * it succeeds, so the version is recorded whatever the build does next (fails, errors, is
 * aborted) and also from a fan-out part, whose steps the build's result does not list. A
 * pipeline that is gone (destroyed) has nothing to record it in.
 */
async function saveOutput(ctx: BuildContext, resource: string, version: ResourceVersion): Promise<void> {
  if (!ctx.jobBuild || !ctx.patched('put-saves-output')) return;
  const { pipeline, job, number } = ctx.jobBuild;
  const output: SavedOutput = { job, number, resource, version };
  try {
    await getExternalWorkflowHandle(pipelineWorkflowId(pipeline)).signal(PIPELINE_SIGNALS.output, output);
  } catch (err) {
    if (isCancellation(err)) throw err;
  }
}

/**
 * `inputs: detect` (and no `inputs`): the artifacts whose names start a path in the params'
 * strings, `.` and `..` skipped (`./repo/x` names `repo`), as Concourse's detectInputsFromParam.
 */
function detectInputs(params: unknown, available: string[]): string[] {
  const found = new Set<string>();
  const walk = (v: unknown): void => {
    if (typeof v === 'string') {
      const first = v.split('/').find((part) => part !== '.' && part !== '..') ?? v;
      if (available.includes(first)) found.add(first);
    } else if (Array.isArray(v)) v.forEach(walk);
    else if (typeof v === 'object' && v !== null) Object.values(v).forEach(walk);
  };
  walk(params);
  return [...found];
}
