import type { Artifacts, ImageTypeUse } from '../activities/types';
import type { CompiledPlan, GetStep, ImageResource, PutStep, ResourceRef, ResourceVersion, Step, TaskStep } from '../schemas/compiled';
import { deadlineOf, StepError, type BuildContext, type Frame } from './context';
import {
  RESOURCE_RESPONSE as RESPONSE,
  RESOURCE_RESPONSE_FILE as RESPONSE_FILE,
  RESOURCE_WRAPPERS as WRAPPERS,
  type ResourceScript,
} from '../common/resource-scripts';
import { redactedValues } from './credentials';

/**
 * Runs a resource type's check/in/out as a task step through the same activity as any task
 * (runtime-neutral): a host type's script on the worker's host (`onHost`), an image type's in a
 * container of its image. Returns the script's parsed stdout and the outputs (the fetched
 * artifact for `in`).
 */
export async function runResourceScript(
  ctx: BuildContext,
  step: GetStep | PutStep,
  frame: Frame,
  run: { script: ResourceScript; request: unknown; inputs?: string[]; output?: string },
): Promise<{ response: unknown; outputs: Artifacts }> {
  const { resource } = step;
  const where = resourceScript(resource, run.script);
  const task: TaskStep = {
    kind: 'task',
    id: step.id,
    line: step.line,
    // Each run is announced on its own in the build's log: "check repo", then "get repo".
    task: `${run.script === 'in' ? 'get' : run.script === 'out' ? 'put' : 'check'} ${step.name}`,
    config: {
      inputs: (run.inputs ?? []).map((name) => ({ name })),
      outputs: [...(run.output ? [{ name: run.output }] : []), { name: RESPONSE }],
      caches: [],
      // The variables Concourse gives check/in/out. The request, with the source and params, is
      // CAUSEWAY_RESOURCE_REQUEST, set by the activity once it has resolved their credential refs.
      params: {
        BUILD_ID: ctx.buildId,
        BUILD_NAME: ctx.buildId,
        BUILD_JOB_NAME: ctx.plan,
      },
      run: { path: 'sh', args: ['-c', WRAPPERS[run.script], where.script, ...(run.output ? [run.output] : [])] },
      ...(where.image ? { image_resource: where.image } : {}),
    },
    params: {},
    vars: {},
    inputMapping: {},
    outputMapping: {},
    // Concourse: a resource_types entry with `privileged: true` runs its containers privileged.
    privileged: resource.type.kind === 'image' && resource.type.privileged === true,
  };
  const artifacts = frame.scope.allArtifacts();
  const result = await ctx.acts.runTask.executeWithOptions({ summary: `${run.script} ${resource.name} · ${step.id}` }, [
    {
      buildId: ctx.buildId,
      runId: ctx.runId,
      plan: ctx.plan,
      step: task,
      // check, in and out of one step are distinct runs of it.
      runKey: `${frame.runKey}.${run.script}`,
      attempt: ctx.status.attempts(step.id),
      artifacts: Object.fromEntries((run.inputs ?? []).map((n) => [n, artifacts[n]])),
      services: frame.services,
      deadline: deadlineOf(frame),
      ...(where.image ? { resourceContainer: true } : { onHost: true }),
      ...(resource.type.kind === 'host' && resource.type.base ? { baseType: resource.type.name } : {}),
      resource: { name: resource.name, request: run.request, ...(resource.deferredVars ? { deferredVars: resource.deferredVars } : {}) },
      varSources: ctx.credentials?.varSources,
      ...(ctx.credentials?.pipeline !== undefined ? { pipeline: ctx.credentials.pipeline } : {}),
      redact: redactedValues(ctx.credentials, frame),
    },
  ]);
  // Concourse: a resource script that fails errors the step (it is not the build's code failing).
  if (result.exitCode !== 0)
    throw new StepError(`resource ${resource.name}: ${run.script} exited ${result.exitCode}; its stderr is in the step's log`);
  const response = await ctx.acts.loadVar.executeWithOptions({ summary: `${run.script} response ${resource.name} · ${step.id}` }, [
    {
      buildId: ctx.buildId,
      step: {
        kind: 'load_var',
        id: step.id,
        var: `${run.script} response of ${resource.name}`,
        file: RESPONSE_FILE,
        format: 'json',
        reveal: false,
      },
      artifacts: { [RESPONSE]: result.outputs[RESPONSE] },
    },
  ]);
  const outputs = { ...result.outputs };
  delete outputs[RESPONSE];
  return { response, outputs };
}

/** The image types a resource_types entry may have: its /opt/resource scripts run in a container of that image. */
const IMAGE_TYPES = ['registry-image', 'docker-image'];

/**
 * Where the type's script is: a host executable (base types and `type: directory`: run on the
 * worker's host), or /opt/resource/SCRIPT in a container of the type's image (Concourse's
 * custom resource types), which only runtimes with containers run.
 */
function resourceScript(resource: ResourceRef, script: ResourceScript): { script: string; image?: ImageResource } {
  const type = resource.type;
  if (type.kind === 'host') return { script: `${type.dir}/${script}` };
  if (type.kind === 'image') {
    if (!IMAGE_TYPES.includes(type.type))
      throw new StepError(
        `resource ${resource.name}: its type ${type.name} is a resource_types entry of type ${type.type}; a resource type's image comes from type registry-image (or docker-image)`,
      );
    return { script: `/opt/resource/${script}`, image: { type: type.type, source: type.source } };
  }
  throw new StepError(
    `resource ${resource.name}: its type ${type.name} is not a base type here and no resource_types entry declares it (base types: git, time, registry-image, mock)`,
  );
}

function isVersion(v: unknown): v is ResourceVersion {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
}

/** check's stdout: a list of versions, oldest first. */
export function versionsOf(resource: string, response: unknown): ResourceVersion[] {
  if (!Array.isArray(response) || !response.every(isVersion)) {
    throw new StepError(
      `resource ${resource}: check printed ${JSON.stringify(response)}; the protocol wants a JSON list of versions (maps of strings)`,
    );
  }
  return response;
}

/** in's and out's stdout: {version, metadata}. */
export function versionOf(resource: string, script: ResourceScript, response: unknown): ResourceVersion {
  const version = (response as { version?: unknown } | null)?.version;
  if (!isVersion(version)) {
    throw new StepError(
      `resource ${resource}: ${script} printed ${JSON.stringify(response)}; the protocol wants {"version": {...strings}, "metadata": [...]}`,
    );
  }
  return version;
}

function metadataOf(response: unknown): Record<string, string> {
  const list = (response as { metadata?: unknown }).metadata;
  if (!Array.isArray(list)) return {};
  return Object.fromEntries(
    list.flatMap((m: { name?: unknown; value?: unknown }) => (typeof m?.name === 'string' ? [[m.name, String(m.value ?? '')]] : [])),
  );
}

/** Fetches `version` of the step's resource into the artifact `step.name` (in), which joins the scope. */
export async function fetchVersion(
  ctx: BuildContext,
  step: GetStep | PutStep,
  frame: Frame,
  version: ResourceVersion,
  params: Record<string, unknown>,
): Promise<void> {
  const { response, outputs } = await runResourceScript(ctx, step, frame, {
    script: 'in',
    request: { source: step.resource.source, version, params },
    output: step.name,
  });
  ctx.status.resource(step.id, step.resource.name, versionOf(step.resource.name, 'in', response));
  frame.scope.setArtifact(step.name, outputs[step.name]);
  // Concourse 8.1: the version's metadata as a local var named after the step, ((.:repo.commit)).
  frame.scope.setLocal(step.name, metadataOf(response));
  ctx.releaser?.produced({ [step.name]: outputs[step.name] });
}

/**
 * The plan's gets and puts whose type is an image, for prepareBuild: a worker without
 * containers refuses the build before its first step. Absent when there are none, so the
 * request of every other plan is as before.
 */
export function imageTypesOf(plan: CompiledPlan): { imageTypes?: ImageTypeUse[] } {
  const found: ImageTypeUse[] = [];
  const walk = (s: Step): void => {
    if ((s.kind === 'get' || s.kind === 'put') && s.resource.type.kind === 'image')
      found.push({ at: `${plan.source}:${s.line ?? '?'}`, resource: s.resource.name, type: s.resource.type.name });
    if (s.kind === 'do' || s.kind === 'in_parallel') s.steps.forEach(walk);
    if (s.kind === 'try') walk(s.step);
    for (const hook of Object.values(s.hooks ?? {})) if (hook) walk(hook);
  };
  walk(plan.plan);
  return found.length > 0 ? { imageTypes: found } : {};
}
