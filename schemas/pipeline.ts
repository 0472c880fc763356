// A whole pipeline for `set-pipeline`: every job compiled as `run --job` compiles it, plus
// what the scheduler needs (each job's inputs, serial, serial_groups, max_in_flight, ...)
// and each resource's check settings. Every problem of the file is reported at once,
// before anything changes.
import { z } from 'zod';
import { DEFAULT_CHECK_EVERY_MS, DEFAULT_CHECK_TIMEOUT_MS } from './check-defaults';
import type { CompiledPlan, GetStep, ResourceRef, ResourceVersion, Step, VarSourceConfig } from './compiled';
import { formatIssue, PlanError, Source, type PlanIssue } from './errors';
import { isPlainObject } from './interpolate';
import { checkName } from './names';
import { compilePlan, compileVarSources } from './plan';
import { Resources } from './resources';
import { expandPassed, validatePipeline } from './pipeline-validate';
import { parseDuration } from './units';
import { bool, validate } from './validate';
import { interpolateStatic } from './vars';
import { formatPipelineRef, withInstanceVars, type InstanceVars } from './instance-vars';

export interface JobInput {
  /** the get step's name: the artifact it makes */
  name: string;
  resource: string;
  trigger: boolean;
  passed: string[];
  version: 'latest' | 'every' | ResourceVersion;
}

export interface PipelineJob {
  name: string;
  plan: CompiledPlan;
  inputs: JobInput[];
  /** serial: true is max_in_flight 1 */
  maxInFlight: number | undefined;
  serialGroups: string[];
  disableManualTrigger: boolean;
  /** disable_reruns: true (absent otherwise, as in configs compiled before it) */
  disableReruns?: true;
  /** `old_name:`: the job takes over the builds and numbering the pipeline kept under that name */
  oldName?: string;
}

export interface PipelineResource {
  name: string;
  ref: ResourceRef;
  /** 0: only on check-resource (`check_every: never`) */
  checkEveryMs: number;
  /** a check running longer fails and runs again at the next interval; absent in configs set before check_timeout existed (1 h) */
  checkTimeoutMs?: number;
  /** `version:` of the resource in the pipeline: pinned by config */
  pinned?: ResourceVersion;
  /** `old_name:`: the resource takes over the versions, pins and check records kept under that name */
  oldName?: string;
}

export interface PipelineConfig {
  name: string;
  /** an instance's vars (Concourse's instance_vars): they are vars of the file too, winning over the others */
  instanceVars?: InstanceVars;
  /** an instance as it prints, NAME/k:v,..., for the pipeline workflow's messages (it cannot apply fly's YAML quoting rules itself) */
  ref?: string;
  /** the file as set, for the diff of the next set-pipeline */
  text: string;
  resources: PipelineResource[];
  jobs: PipelineJob[];
  /** the file's `var_sources:`, for the refs in resources' sources its checks resolve; absent when none */
  varSources?: VarSourceConfig[];
}

const SchedulingSchema = z.object({
  name: z.string(),
  serial: bool.optional(),
  serial_groups: z.array(z.string().min(1, 'a serial group needs a name')).optional(),
  max_in_flight: z.number().int().min(1, 'max_in_flight must be 1 or more').optional(),
  disable_manual_trigger: bool.optional(),
  disable_reruns: bool.optional(),
  old_name: z.string({ error: 'old_name is the name the job had' }).min(1).optional(),
});

const CheckSchema = z.object({
  name: z.string(),
  old_name: z.string({ error: 'old_name is the name the resource had' }).min(1).optional(),
  type: z.string().optional(),
  check_every: z.string().optional(),
  check_timeout: z.string().optional(),
});
const TypeTimeoutSchema = z.object({ name: z.string(), check_timeout: z.string().optional() });

/** A positive duration, or the message saying why it is not one. */
function positiveDuration(value: string): number | string {
  try {
    const ms = parseDuration(value);
    return ms > 0 ? ms : `must be longer than 0, got \`${value}\``;
  } catch (err) {
    return (err as Error).message;
  }
}

/** The get steps of a plan anywhere in it (hooks, try, in_parallel included), as Concourse collects a job's inputs. */
export function getSteps(step: Step): GetStep[] {
  return stepsOf(step).filter((s): s is GetStep => s.kind === 'get');
}

/** Every step of a plan, itself first (hooks, try, in_parallel included). */
function stepsOf(step: Step): Step[] {
  const children: Step[] = step.kind === 'do' || step.kind === 'in_parallel' ? step.steps : step.kind === 'try' ? [step.step] : [];
  const hooks = Object.values(step.hooks ?? {}).filter((h): h is Step => h !== undefined);
  return [step, ...children.flatMap(stepsOf), ...hooks.flatMap(stepsOf)];
}

/**
 * Compiles a pipeline file; throws PlanError with every issue (file:line:column) of every job.
 * As fly's set-pipeline, refs that `vars` (-v, -l, instance vars) do not give stay as
 * credential refs where the worker resolves them when a check or step runs (resource and
 * resource type sources, get/put params, task and service params and config).
 */
export function compilePipeline(opts: CompilePipelineOptions): PipelineConfig {
  return compilePipelineSource(opts).config;
}

type CompilePipelineOptions = {
  name: string;
  text: string;
  file: string;
  vars?: Record<string, unknown>;
  /** an instance's vars: vars of the file as well, winning over `vars` */
  instanceVars?: InstanceVars;
};

/** compilePipeline, and the file as it parsed it, for what else reads it (pipelineWarnings). */
export function compilePipelineSource(opts: CompilePipelineOptions): { config: PipelineConfig; source: Source } {
  const vars = withInstanceVars(opts.vars ?? {}, opts.instanceVars);
  const src = new Source(opts.file, opts.text);
  src.check();
  const root = src.value;
  if (!isPlainObject(root) || !Array.isArray(root.jobs)) {
    src.add([], 'a pipeline is a map with `jobs:` (and usually `resources:`)');
    src.check();
  }
  const top = root as Record<string, unknown>;
  const bad = checkName('pipeline', opts.name);
  if (bad) throw new Error(bad);
  const issues: PlanIssue[] = [];
  const jobs: PipelineJob[] = [];
  const rawJobs = top.jobs as unknown[];
  rawJobs.forEach((raw, index) => {
    const where = ['jobs', index];
    const job = isPlainObject(raw) ? (interpolateStatic(src, { ...raw, plan: [] }, where, vars) as Record<string, unknown>) : {};
    // validate: its messages say what was expected and what is there ("expected a string, got number 123").
    const oldName = SchedulingSchema.safeParse(job).error?.issues.find((i) => i.path[0] === 'old_name');
    if (oldName) return src.add([...where, 'old_name'], oldName.message);
    const s = validate(src, SchedulingSchema, job, where, 'job');
    if (!s) return;
    const badName = checkName('job', s.name);
    if (badName) return src.add([...where, 'name'], badName);
    if (jobs.some((j) => j.name === s.name)) return src.add([...where, 'name'], `a second job named \`${s.name}\``);
    let plan: CompiledPlan;
    try {
      plan = compilePlan({ text: opts.text, file: opts.file, job: s.name, vars, deferUnsourced: true, source: src.fork() });
    } catch (err) {
      if (err instanceof PlanError) issues.push(...err.issues);
      else throw err;
      return;
    }
    const inputs = getSteps(plan.plan).map((g) => ({
      name: g.name,
      resource: g.resource.name,
      trigger: g.trigger,
      passed: g.passed,
      version: g.version,
    }));
    jobs.push({
      name: s.name,
      plan: plan.varSources ? { ...plan, varSources: withClaims(plan.varSources, s.name, opts.instanceVars) } : plan,
      inputs,
      maxInFlight: s.serial || (s.serial_groups?.length ?? 0) > 0 ? 1 : s.max_in_flight,
      serialGroups: s.serial_groups ?? [],
      disableManualTrigger: s.disable_manual_trigger ?? false,
      ...(s.disable_reruns ? { disableReruns: true as const } : {}),
      ...(s.old_name ? { oldName: s.old_name } : {}),
    });
  });

  const resources: PipelineResource[] = [];
  // A pipeline's unsourced refs are always the workers' manager's, as fly's set-pipeline leaves them.
  const { sources: varSources, declared } = compileVarSources(src, top, vars, true);
  const compiler = new Resources(src, top, { vars, varSources: declared, deferUnsourced: true });
  // A resource type's check_timeout is the default of the resources of that type.
  const typeTimeouts = new Map<string, number>();
  (Array.isArray(top.resource_types) ? top.resource_types : []).forEach((raw, index) => {
    const where = ['resource_types', index];
    if (!isPlainObject(raw)) return;
    // A check_timeout that is not a string (`5`) is refused as Concourse refuses it, not ignored.
    const t = validate(
      src,
      TypeTimeoutSchema,
      interpolateStatic(src, { name: raw.name, check_timeout: raw.check_timeout }, where, vars),
      where,
      'resource type',
    );
    if (!t || t.check_timeout === undefined) return;
    const ms = positiveDuration(t.check_timeout);
    if (typeof ms === 'string') return src.add([...where, 'check_timeout'], `check_timeout ${ms}`);
    typeTimeouts.set(t.name, ms);
  });
  const list = Array.isArray(top.resources) ? top.resources : [];
  list.forEach((raw, index) => {
    const where = ['resources', index];
    const fields = isPlainObject(raw)
      ? interpolateStatic(
          src,
          { name: raw.name, old_name: raw.old_name, type: raw.type, check_every: raw.check_every, check_timeout: raw.check_timeout },
          where,
          vars,
        )
      : {};
    const c = CheckSchema.safeParse(fields);
    if (!c.success) {
      // Each problem at its key (`check_every: 5` is not a missing name), said as validate says it.
      const oldName = c.error.issues.find((i) => i.path[0] === 'old_name');
      if (oldName) return src.add([...where, 'old_name'], oldName.message);
      if (!isPlainObject(fields) || typeof fields.name !== 'string') return src.add(where, 'a resource needs a name');
      validate(src, CheckSchema, fields, where, 'resource');
      return;
    }
    const badName = checkName('resource', c.data.name);
    if (badName) return src.add([...where, 'name'], badName);
    let checkEveryMs = c.data.check_every === 'never' ? 0 : DEFAULT_CHECK_EVERY_MS;
    if (c.data.check_every !== undefined && c.data.check_every !== 'never') {
      try {
        checkEveryMs = parseDuration(c.data.check_every);
      } catch (err) {
        return src.add([...where, 'check_every'], (err as Error).message);
      }
    }
    let checkTimeoutMs = (c.data.type !== undefined && typeTimeouts.get(c.data.type)) || DEFAULT_CHECK_TIMEOUT_MS;
    if (c.data.check_timeout !== undefined) {
      const ms = positiveDuration(c.data.check_timeout);
      if (typeof ms === 'string') return src.add([...where, 'check_timeout'], `check_timeout ${ms}`);
      checkTimeoutMs = ms;
    }
    const ref = compiler.resource(c.data.name, where);
    if (!ref) return;
    const pinned = compiler.pinned(c.data.name);
    resources.push({
      name: c.data.name,
      ref,
      checkEveryMs,
      checkTimeoutMs,
      ...(pinned ? { pinned } : {}),
      ...(c.data.old_name ? { oldName: c.data.old_name } : {}),
    });
  });

  // Concourse's checks across the file; those that read every job's steps only once every job
  // compiled (a job left out would make its resources unused and its name unknown to `passed:`).
  const links = jobs.map((j) => ({
    name: j.name,
    resources: new Set(stepsOf(j.plan.plan).flatMap((s) => (s.kind === 'get' || s.kind === 'put' ? [s.resource.name] : []))),
    inputs: j.inputs,
  }));
  const everyJob = jobs.length === rawJobs.length;
  validatePipeline(src, top, everyJob ? links : undefined);
  if (everyJob) {
    const indexOf = (name: string) => rawJobs.findIndex((raw) => isPlainObject(raw) && raw.name === name);
    const passed = expandPassed(src, links, indexOf);
    for (const job of jobs) job.inputs.forEach((input, k) => (input.passed = passed.get(job.name)![k]));
  }
  issues.push(...src.issues);
  // Each job compiles the resources it uses: a bad resource would be reported once per job.
  const unique = [...new Map(issues.map((i) => [formatIssue(i), i])).values()];
  if (unique.length > 0) throw new PlanError(unique.sort((a, b) => a.line - b.line || a.column - b.column));
  const config: PipelineConfig = {
    name: opts.name,
    ...(opts.instanceVars && Object.keys(opts.instanceVars).length > 0
      ? { instanceVars: opts.instanceVars, ref: formatPipelineRef({ name: opts.name, instanceVars: opts.instanceVars }) }
      : {}),
    text: opts.text,
    resources,
    jobs,
    ...(varSources.length > 0 ? { varSources: withClaims(varSources, undefined, opts.instanceVars) } : {}),
  };
  return { config, source: src };
}

/**
 * A pipeline's idtoken sources with the claims only the pipeline knows (the worker adds the
 * team, the pipeline's name and the time): the job whose plan holds them (none in the
 * pipeline's own, which its checks use, as Concourse's check builds name no job), and an
 * instance's vars.
 */
function withClaims(sources: VarSourceConfig[], job: string | undefined, instanceVars: InstanceVars | undefined): VarSourceConfig[] {
  const vars = instanceVars && Object.keys(instanceVars).length > 0 ? { instanceVars } : {};
  return sources.map((s) => (s.type === 'idtoken' ? { ...s, ...(job !== undefined ? { job } : {}), ...vars } : s));
}
