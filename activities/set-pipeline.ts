import { Context } from '@temporalio/activity';
import YAML from 'yaml';
import type { Client } from '@temporalio/client';
import {
  applyPipeline,
  changes,
  configKey,
  credentialRefsNote,
  lastPipelineView,
  pipelineDiff,
  setPipelineParent,
} from '../common/pipeline-set';
import { formatPipelineRef, type InstanceVars } from '../schemas/instance-vars';
import { findVarRefs, isPlainObject } from '../schemas/interpolate';
import { checkName } from '../schemas/names';
import { pipelineNameOf } from '../schemas/pipeline-api';
import { compilePipeline } from '../schemas/pipeline';
import { PlanError } from '../schemas/errors';
import { CredentialResolver } from './creds';
import { NO_CREDENTIALS, type ActivityDeps } from './deps';
import { StepErrored } from './errors';
import type { Runtime } from './runtime/types';
import { artifactFile, readArtifactText } from './step/task-config';
import type { SetPipelineRequest } from './types';

/**
 * The set_pipeline step's work, as Concourse's SetPipelineStep: reads the pipeline file and
 * var files from artifacts, compiles the pipeline (an invalid one fails the step with every
 * problem in its log), prints the diff against the running config, and sets it as
 * `causeway set-pipeline --non-interactive` does. Idempotent: setting the same config again
 * changes nothing, and log messages carry ids so a retried attempt does not repeat them.
 */
export async function setPipeline(
  deps: Pick<ActivityDeps, 'publisher' | 'credentials'>,
  runtime: Pick<Runtime, 'readArtifactFile'>,
  unresolved: SetPipelineRequest,
): Promise<{ ok: boolean }> {
  // Started and finished events, as a task's: `run` and `watch` head the step's log with its
  // name and end it with its outcome. The name is the resolved one, once it resolves.
  const resolved = await withCredentials(deps, unresolved).catch((err: unknown) => err);
  const req = resolved instanceof Error ? unresolved : (resolved as SetPipelineRequest);
  const runName = runNameOf(req);
  const event = { buildId: req.buildId, stepId: req.step.id, name: `set_pipeline ${req.step.pipeline}`, attempt: req.attempt ?? 1 };
  const time = () => new Date().toISOString();
  await deps.publisher.event({ type: 'step-started', ...event, time: time() }, `${runName}/started`);
  try {
    if (resolved instanceof Error) throw resolved;
    const result = await setPipelineFromFile(deps, runtime, req);
    const state = result.ok ? 'succeeded' : 'failed';
    await deps.publisher.event({ type: 'step-finished', ...event, state, time: time() }, `${runName}/finished`);
    return result;
  } catch (err) {
    if (err instanceof StepErrored) {
      const ending = { state: 'errored' as const, message: err.message };
      await deps.publisher.event({ type: 'step-finished', ...event, ...ending, time: time() }, `${runName}/finished`);
    }
    throw err;
  }
}

/**
 * The step's name and vars with their credential refs resolved, as Concourse evaluates a
 * SetPipelinePlan when it runs; the name is checked once it is known. A ref found nowhere
 * errors the step, naming it.
 */
async function withCredentials(deps: Pick<ActivityDeps, 'credentials'>, req: SetPipelineRequest): Promise<SetPipelineRequest> {
  const { pipeline, vars, team, instanceVars } = req.step;
  const credentials = deps.credentials ?? NO_CREDENTIALS;
  const creds = new CredentialResolver(credentials, req.credentialsPipeline ?? '', req.varSources, req.buildId);
  const { value, missing } = hasRefs({ pipeline, vars, team, instanceVars })
    ? await creds.interpolate({ pipeline, vars, team, instanceVars })
    : { value: { pipeline, vars, team, instanceVars }, missing: [] };
  const what = `set_pipeline ${pipeline}`;
  if (missing.length > 0)
    throw new StepErrored(
      [...new Map(missing.map((r) => [r.raw, r])).values()]
        .map((r) => `${what}: undefined var \`${r.raw}\`: ${creds.explain(r)}`)
        .join('\n'),
      'UndefinedVar',
    );
  const bad = checkName('pipeline', value.pipeline);
  if (bad) throw new StepErrored(`${what}: ${creds.redactMessage(bad)}`);
  // Concourse lets an admin team set another team's pipeline; here a worker serves one team.
  if (value.team !== undefined && value.team !== credentials.team)
    throw new StepErrored(
      `${what}: team ${creds.redactMessage(value.team)}: this worker sets pipelines of team ${credentials.team} only; remove \`team:\` or name that team`,
    );
  return {
    ...req,
    step: { ...req.step, pipeline: value.pipeline, vars: value.vars, ...(value.instanceVars ? { instanceVars: value.instanceVars } : {}) },
  };
}

function hasRefs(value: unknown): boolean {
  if (typeof value === 'string') return findVarRefs(value).length > 0;
  if (Array.isArray(value)) return value.some(hasRefs);
  return isPlainObject(value) && Object.values(value).some(hasRefs);
}

/** Each attempt of an `attempts:` step publishes its own events and log (ids are deduplicated). */
const runNameOf = (req: SetPipelineRequest) => `${req.runId}/${req.step.id}/set_pipeline${req.runKey ? `/${req.runKey}` : ''}`;

async function setPipelineFromFile(
  deps: Pick<ActivityDeps, 'publisher'>,
  runtime: Pick<Runtime, 'readArtifactFile'>,
  req: SetPipelineRequest,
): Promise<{ ok: boolean }> {
  const client = Context.current().client;
  // `self` is the build's own pipeline, an instance with its own vars (Concourse ignores the step's instance_vars there).
  const instanceVars = req.self !== undefined ? await selfInstanceVars(client, req.self) : req.step.instanceVars;
  const step = { ...req.step, instanceVars };
  const ref = formatPipelineRef({ name: step.pipeline, instanceVars });
  const what = `set_pipeline ${ref}`;
  const read = (file: string) => readArtifactText(runtime, artifactFile(req.buildId, file, req.artifacts, what), `${what}: file ${file}`);
  const log = (stream: 'stdout' | 'stderr', text: string, n: number) =>
    deps.publisher.log(req.buildId, step.id, stream, Buffer.from(text), `${runNameOf(req)}/${n}`);

  // Concourse: `vars` win over var_files, and an earlier var file over a later one.
  const fromFiles: Record<string, unknown>[] = [];
  for (const file of step.varFiles) {
    let parsed: unknown;
    try {
      parsed = YAML.parse(await read(file));
    } catch (err) {
      if (err instanceof StepErrored) throw err;
      throw new StepErrored(`${what}: var file ${file} is not valid YAML: ${(err as Error).message}`);
    }
    if (parsed !== null && parsed !== undefined && !isPlainObject(parsed))
      throw new StepErrored(`${what}: var file ${file} must be a map of vars`);
    fromFiles.push((parsed as Record<string, unknown> | null) ?? {});
  }
  const vars = Object.assign({}, ...fromFiles.reverse(), step.vars) as Record<string, unknown>;

  let config;
  try {
    config = compilePipeline({ name: step.pipeline, text: await read(step.file), file: step.file, vars, instanceVars });
  } catch (err) {
    if (!(err instanceof PlanError)) throw err instanceof StepErrored ? err : new StepErrored(`${what}: ${(err as Error).message}`);
    await log('stderr', `invalid pipeline:\n${err.message}\n`, 0);
    return { ok: false };
  }

  const key = configKey(config);
  const last = await lastPipelineView(client, key);
  const running = last?.running ? last.view : undefined;
  const diff = pipelineDiff(running?.config.text ?? '', config.text, step.file);
  if (running && !changes(diff)) {
    await log('stdout', 'no changes to apply.\n', 0);
    // Concourse records this build as the setter even so (SetParentIDs), and errors the step when a newer build set it.
    const parent = req.by && (await setPipelineParent(client, key, req.by));
    if (typeof parent === 'object') throw new StepErrored(`${what}: ${parent.refused}; an older build may not set it again`);
    return { ok: true };
  }
  const note = credentialRefsNote(config);
  await log('stdout', `${diff.join('\n')}\n${note ? `${note}\n` : ''}setting pipeline: ${ref}\n`, 0);
  const applied = await applyPipeline(client, req.pipelineTaskQueue, config, last, { by: req.by, initiallyPaused: false });
  if (typeof applied === 'object') {
    // As Concourse: a warning, and the step succeeds without saving.
    await log('stderr', `WARNING: the pipeline was not saved because it was already saved by a newer build (${applied.refused})\n`, 1);
    return { ok: true };
  }
  await log('stdout', 'done\n', 1);
  return { ok: true };
}

/** The instance vars of the pipeline with this key (none for a pipeline that is not an instance). */
async function selfInstanceVars(client: Client, key: string): Promise<InstanceVars | undefined> {
  if (pipelineNameOf(key) === key) return undefined;
  const last = await lastPipelineView(client, key);
  if (!last?.running) throw new StepErrored(`set_pipeline self: pipeline ${key} does not exist any more`);
  return last.view.config.instanceVars;
}
