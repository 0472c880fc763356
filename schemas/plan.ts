// Compiles a Concourse job (or one job of a pipeline) into the CompiledPlan the
// `build` workflow walks: shapes validated, static vars interpolated, local var
// use checked, every step given an id from its position.
import { basename, extname } from 'node:path';
import { z } from 'zod';
import { checkPayloadSize, checkPlan, MAX_STEP_ID, readYamlFile, varProblems } from './checks';
import type { Across, CompiledPlan, DoStep, Hooks, Step, StepCommon, VarSourceConfig } from './compiled';
import { STEP_KEYS, type StepKey } from './describe';
import { PlanError, Source, type Path } from './errors';
import { findVarRefs, interpolate, isPlainObject, lookupIn, stringifyVar, SVC_SOURCE, type VarRef } from './interpolate';
import { checkName } from './names';
import { GetFields, getBody, PutFields, putBody, Resources } from './resources';
import { checkServiceRef, compileServices, serviceRefs, type ServiceScope } from './services';
import { compact, compileTaskConfig, ContainerLimitsSchema, toContainerLimits } from './task-config';
import { nearest, parseDuration } from './units';
import { bool, envMap, int, validate } from './validate';
import { dependencyMessage, orderByDependency, VarSource } from './var-sources';
import { interpolateDeferring, interpolateStatic, type DeferredVar } from './vars';

export const HOOK_KEYS = ['on_success', 'on_failure', 'on_abort', 'on_error', 'ensure'] as const;

const timeout = z.string().transform((s, ctx) => {
  try {
    const ms = parseDuration(s);
    if (ms > 0) return ms;
    ctx.addIssue({ code: 'custom', message: `timeout must be longer than 0, got \`${s}\`` });
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
  }
  return z.NEVER;
});

const MAX_IN_FLIGHT = 'max_in_flight must be a positive integer or "all"';
const LOCAL_REF = /^\(\(\s*\.:[^()]+\)\)$/;

const AcrossSchema = z
  .array(
    z.strictObject({
      var: z.string().min(1, 'an across var needs a name'),
      values: z.union([z.array(z.unknown()), z.string().regex(LOCAL_REF)], {
        error: '`values` must be a list, or a local var like ((.:list)) set by load_var',
      }),
      max_in_flight: z
        .preprocess(
          (v) => (typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v),
          z.union([z.literal('all'), z.number().int().min(1, MAX_IN_FLIGHT)], { error: MAX_IN_FLIGHT }),
        )
        .optional(),
    }),
  )
  .min(1, '`across` needs at least one var')
  .superRefine((vars, ctx) => {
    const seen = new Set<string>();
    vars.forEach((v, i) => {
      if (seen.has(v.var)) ctx.addIssue({ code: 'custom', path: [i, 'var'], message: `duplicate across var \`${v.var}\`` });
      seen.add(v.var);
    });
  });

// Modifiers and hooks any step may carry; nested steps are compiled one by one
// so their errors carry their own paths.
const common = {
  timeout: timeout.optional(),
  attempts: int(1, 'attempts').optional(),
  tags: z.array(z.string()).optional(),
  across: AcrossSchema.optional(),
  fail_fast: bool.optional(),
  // compiled on its own by compileServices, so its errors carry their own paths
  services: z.unknown().optional(),
  on_success: z.unknown().optional(),
  on_failure: z.unknown().optional(),
  on_abort: z.unknown().optional(),
  on_error: z.unknown().optional(),
  ensure: z.unknown().optional(),
};

const name = (what: string) => z.string().min(1, `${what} needs a name`);

const TaskStepSchema = z.strictObject({
  ...common,
  task: name('a task step'),
  config: z.unknown().optional(),
  file: z.string().min(1).optional(),
  params: envMap.optional(),
  vars: z.record(z.string(), z.unknown()).optional(),
  input_mapping: z.record(z.string(), z.string()).optional(),
  output_mapping: z.record(z.string(), z.string()).optional(),
  image: z.string().min(1).optional(),
  privileged: bool.optional(),
  container_limits: ContainerLimitsSchema.optional(),
  // Concourse's hermetic (no network) needs runtime support we do not have; accepted so files run unchanged.
  hermetic: bool.optional(),
});

const DoStepSchema = z.strictObject({ ...common, do: z.array(z.unknown()) });
const InParallelStepSchema = z.strictObject({ ...common, in_parallel: z.unknown() });
const InParallelConfigSchema = z.strictObject({
  steps: z.array(z.unknown()),
  limit: int(1, 'limit').optional(),
  fail_fast: bool.optional(),
});
const TryStepSchema = z.strictObject({ ...common, try: z.unknown() });
const LoadVarStepSchema = z.strictObject({
  ...common,
  load_var: name('a load_var step'),
  file: z.string().min(1),
  format: z.enum(['json', 'yaml', 'yml', 'trim', 'raw']).optional(),
  reveal: bool.optional(),
});

const SetPipelineStepSchema = z.strictObject({
  ...common,
  set_pipeline: name('a set_pipeline step'),
  file: z.string().min(1, 'set_pipeline needs `file`: the pipeline file, as <artifact>/<path>'),
  vars: z.record(z.string(), z.unknown()).optional(),
  var_files: z.array(z.string().min(1)).optional(),
  // Concourse's: the pipeline set is the instance NAME/k:v,... and these are vars of its file too.
  instance_vars: z.record(z.string(), z.unknown()).optional(),
  team: z.string().min(1).optional(),
});

const GetStepSchema = z.strictObject({ ...common, ...GetFields });
const PutStepSchema = z.strictObject({ ...common, ...PutFields });

// Concourse job keys that mean nothing to a one-off build; accepted so a job runs unchanged.
const ignored = z.unknown().optional();
const JobSchema = z.strictObject({
  name: z.string().min(1).optional(),
  plan: z.array(z.unknown()),
  old_name: ignored,
  serial: ignored,
  serial_groups: ignored,
  build_log_retention: ignored,
  build_logs_to_retain: ignored,
  public: ignored,
  disable_manual_trigger: ignored,
  disable_reruns: ignored,
  interruptible: ignored,
  // Concourse 8.3: the tags of every step that has none of its own.
  tags: z.array(z.string()).optional(),
  max_in_flight: ignored,
  on_success: z.unknown().optional(),
  on_failure: z.unknown().optional(),
  on_abort: z.unknown().optional(),
  on_error: z.unknown().optional(),
  ensure: z.unknown().optional(),
  // read by compileVarSources: a one-off build's file may declare them as a pipeline does
  var_sources: ignored,
});

// Not strict: Concourse ignores unknown top-level keys, where pipelines keep YAML anchors
// (`shared: &task-config {...}`). Keys inside jobs and steps stay checked.
const PipelineSchema = z.object({
  jobs: z.array(z.unknown()),
  resources: ignored,
  resource_types: ignored,
  groups: ignored,
  var_sources: ignored,
  display: ignored,
});

/** Walks one file's steps; every problem is reported to `src`. */
class Compiler {
  /** the services of the enclosing steps, for ((.svc:NAME.field)) checks */
  private readonly serviceScopes: ServiceScope[] = [];
  /** the get steps' names so far: each names its artifact, so a job has one of each (Concourse: "repeated name") */
  private readonly getNames = new Set<string>();
  /**
   * The vars load_var and across declare, per Concourse's validator scope: the job's, then one per
   * enclosing across. Declaring one twice in a scope is its "repeated var name".
   */
  private readonly declared: Set<string>[] = [new Set()];

  constructor(
    private readonly src: Source,
    private readonly resources: Resources,
  ) {}

  steps(list: unknown[], path: Path, idPrefix: string, scope: Set<string>): Step[] {
    return list.flatMap((item, i) => this.step(item, [...path, i], `${idPrefix}.${i}`, scope) ?? []);
  }

  /**
   * `scope` holds the local vars set so far; load_vars add to it, as Concourse's
   * build-wide scope, while across vars live only inside their step.
   */
  step(raw: unknown, path: Path, id: string, scope: Set<string>): Step | undefined {
    const src = this.src;
    // checkPlan says why; going deeper would only exhaust the stack on a hostile plan.
    if (id.length > MAX_STEP_ID) return { kind: 'do', id, line: src.line(path), steps: [] };
    if (!isPlainObject(raw)) {
      src.add(path, `a step must be a map with one of ${STEP_KEYS.join(', ')}`);
      return undefined;
    }
    const kinds = STEP_KEYS.filter((k) => k in raw);
    if (kinds.length === 0 && 'run' in raw) {
      src.add(
        path,
        "`run:` runs a prototype (Concourse's experimental `prototypes:`), which Causeway does not support; a command runs in a `task:` step, under its `config.run`",
      );
      return undefined;
    }
    if (kinds.length === 0) {
      const typo = Object.keys(raw)
        .map((k) => [k, nearest(k, STEP_KEYS)] as const)
        .find(([k, hint]) => hint && !(k in common));
      const hint = typo ? `; did you mean \`${typo[1]}\` instead of \`${typo[0]}\`?` : '';
      src.add(path, `a step needs one of ${STEP_KEYS.join(', ')}${hint}`);
      return undefined;
    }
    if (kinds.length > 1) {
      src.add(path, `a step has exactly one of ${STEP_KEYS.join(', ')}; this one has ${kinds.join(' and ')}`);
      return undefined;
    }
    const kind: StepKey = kinds[0];

    // across vars are set for the step itself, not for its hooks (hooks wrap across).
    const acrossVars = Array.isArray(raw.across)
      ? raw.across.flatMap((a) => (isPlainObject(a) && typeof a.var === 'string' ? [a.var] : []))
      : [];
    this.checkLocals(raw.across, [...path, 'across'], scope);
    const bodyScope = raw.across === undefined ? scope : new Set([...scope, ...acrossVars]);
    for (const [k, v] of Object.entries(raw)) {
      if (k !== 'across' && k !== kind && !(HOOK_KEYS as readonly string[]).includes(k)) this.checkLocals(v, [...path, k], bodyScope);
    }

    // Services wrap the step inside `across` and outside its attempts; hooks wrap them, so
    // hooks do not see them, while the step's own fields and nested steps do.
    const services = this.services(kind, raw, path, id);
    if (services) this.serviceScopes.push(services.scope);
    for (const [k, v] of Object.entries(raw)) {
      if (k === 'across' || k === kind || (HOOK_KEYS as readonly string[]).includes(k)) continue;
      for (const { ref, path: at } of serviceRefs(v, [...path, k])) {
        const problem = checkServiceRef(ref, this.serviceScopes);
        if (problem) this.src.add(at, problem);
      }
    }
    if (raw.across !== undefined) this.declared.push(new Set(acrossVars));
    const body = this.body(kind, raw, path, id, bodyScope);
    if (raw.across !== undefined) this.declared.pop();
    if (services) this.serviceScopes.pop();
    const hooks = this.hooks(raw, path, id, scope);
    if (services && !services.specs) return undefined;
    if (!body) return undefined;
    const c = body.common;
    if (c.fail_fast !== undefined && c.across === undefined) {
      src.add([...path, 'fail_fast'], '`fail_fast` applies to `across`; this step has no `across`', { key: true });
      return undefined;
    }
    const across: Across | undefined = c.across && {
      vars: c.across.map((a) => ({ var: a.var, values: a.values, maxInFlight: a.max_in_flight ?? 1 })),
      failFast: c.fail_fast ?? false,
    };
    const stepCommon: StepCommon = compact({
      id,
      line: src.line(path),
      timeoutMs: c.timeout,
      attempts: c.attempts,
      tags: c.tags,
      hooks,
      across,
      services: services?.specs,
    });
    return { ...stepCommon, ...body.step } as Step;
  }

  /** A step's `services:`, compiled, with what ((.svc:...)) refs in scope may name. */
  private services(kind: StepKey, raw: Record<string, unknown>, path: Path, id: string) {
    if (raw.services === undefined) return undefined;
    const at = [...path, 'services'];
    if (kind !== 'task' && kind !== 'do' && kind !== 'in_parallel') {
      this.src.add(at, `\`services\` applies to task, do and in_parallel steps; this is a ${kind} step`, { key: true });
      return { specs: undefined, scope: { stepId: id, label: kind, services: [] } };
    }
    const specs = compileServices(this.src, raw.services, at);
    const label = kind === 'task' ? `task \`${String(raw.task)}\` (${id})` : `${kind} (${id})`;
    // Names are taken from the raw list, so refs to a service whose config has errors are not reported twice.
    const names = Array.isArray(raw.services)
      ? raw.services.flatMap((s) => (isPlainObject(s) && typeof s.name === 'string' ? [s] : []))
      : [];
    const scope: ServiceScope = {
      stepId: id,
      label,
      services: names.map((s) => {
        const spec = specs?.find((x) => x.name === s.name);
        return { name: String(s.name), ports: spec?.config?.ports.map((p) => p.name) };
      }),
    };
    return { specs, scope };
  }

  /** The kind-specific part of a step, and its validated modifiers. */
  private body(kind: StepKey, raw: Record<string, unknown>, path: Path, id: string, scope: Set<string>) {
    const src = this.src;
    switch (kind) {
      case 'task': {
        const s = validate(src, TaskStepSchema, raw, path, 'task step');
        const config = raw.config === undefined ? undefined : compileTaskConfig(src, raw.config, [...path, 'config']);
        if (raw.config === undefined && raw.file === undefined) {
          src.add(path, `task step \`${String(raw.task)}\` needs \`config\` or \`file\``);
          return undefined;
        }
        if (raw.config !== undefined && raw.file !== undefined) {
          src.add([...path, 'file'], `task step \`${String(raw.task)}\` takes one of \`file\` or \`config\`, not both`, { key: true });
          return undefined;
        }
        if (!s || (raw.config !== undefined && !config)) return undefined;
        return {
          common: s,
          step: compact({
            kind: 'task' as const,
            task: s.task,
            config,
            file: s.file,
            params: s.params ?? {},
            vars: s.vars ?? {},
            inputMapping: s.input_mapping ?? {},
            outputMapping: s.output_mapping ?? {},
            image: s.image,
            privileged: s.privileged ?? false,
            containerLimits: s.container_limits && toContainerLimits(s.container_limits),
          }),
        };
      }
      case 'get': {
        // Concourse 8.1: a get sets a local var named after it holding the version's metadata, ((.:repo.commit)).
        if (typeof raw.get === 'string') scope.add(raw.get);
        if (typeof raw.get === 'string' && this.getNames.has(raw.get))
          src.add(
            [...path, 'get'],
            `a second get named \`${raw.get}\`: each get makes the artifact of its name; name one differently (get: other, resource: ${String(raw.resource ?? raw.get)})`,
          );
        if (typeof raw.get === 'string') this.getNames.add(raw.get);
        const s = validate(src, GetStepSchema, raw, path, 'get step');
        const name = s?.resource ?? s?.get;
        const resource = name === undefined ? undefined : this.resources.resource(name, [...path, s?.resource ? 'resource' : 'get']);
        return s && resource && { common: s, step: getBody(s, resource, this.resources.pinned(resource.name)) };
      }
      case 'put': {
        // Its implicit get sets the local var, as a get does.
        if (typeof raw.put === 'string' && raw.no_get !== true) scope.add(raw.put);
        const s = validate(src, PutStepSchema, raw, path, 'put step');
        const name = s?.resource ?? s?.put;
        const resource = name === undefined ? undefined : this.resources.resource(name, [...path, s?.resource ? 'resource' : 'put']);
        return s && resource && { common: s, step: putBody(s, resource) };
      }
      case 'load_var': {
        const s = validate(src, LoadVarStepSchema, raw, path, 'load_var step');
        if (typeof raw.load_var === 'string') scope.add(raw.load_var);
        const declared = this.declared[this.declared.length - 1];
        if (typeof raw.load_var === 'string' && declared.has(raw.load_var))
          src.add(
            [...path, 'load_var'],
            `the var \`${raw.load_var}\` is set twice here (by an earlier load_var or the enclosing across): name one differently`,
          );
        if (typeof raw.load_var === 'string') declared.add(raw.load_var);
        if (!s) return undefined;
        return {
          common: s,
          step: compact({ kind: 'load_var' as const, var: s.load_var, file: s.file, format: s.format, reveal: s.reveal ?? false }),
        };
      }
      case 'set_pipeline': {
        const s = validate(src, SetPipelineStepSchema, raw, path, 'set_pipeline step');
        if (!s) return undefined;
        // A name made by across (`((.:pipeline))`) or a credential ref is checked when the step runs.
        const ref = findVarRefs(s.set_pipeline).length > 0;
        const bad = s.set_pipeline === 'self' || ref ? undefined : checkName('pipeline', s.set_pipeline);
        if (bad) src.add([...path, 'set_pipeline'], bad);
        if (bad) return undefined;
        return {
          common: s,
          step: {
            kind: 'set_pipeline' as const,
            pipeline: s.set_pipeline,
            file: s.file,
            vars: s.vars ?? {},
            varFiles: s.var_files ?? [],
            // `instance_vars: {}` sets the pipeline itself, as Concourse's empty map does.
            ...(s.instance_vars !== undefined && Object.keys(s.instance_vars).length > 0 ? { instanceVars: s.instance_vars } : {}),
            ...(s.team !== undefined ? { team: s.team } : {}),
          },
        };
      }
      case 'do': {
        const s = validate(src, DoStepSchema, raw, path, 'do step');
        const steps = Array.isArray(raw.do) ? this.steps(raw.do, [...path, 'do'], `${id}.do`, scope) : [];
        return s && { common: s, step: { kind: 'do' as const, steps } };
      }
      case 'in_parallel': {
        const s = validate(src, InParallelStepSchema, raw, path, 'in_parallel step');
        const p = [...path, 'in_parallel'];
        const form = Array.isArray(raw.in_parallel)
          ? { steps: raw.in_parallel }
          : validate(src, InParallelConfigSchema, raw.in_parallel, p, '`in_parallel`');
        if (!form) {
          if (!isPlainObject(raw.in_parallel)) src.add(p, 'expected a list of steps, or a map {steps, limit, fail_fast}');
          return undefined;
        }
        const stepsPath = Array.isArray(raw.in_parallel) ? p : [...p, 'steps'];
        // Branches run at once: none sees another's load_vars, later steps see them all.
        const set = new Set<string>();
        const steps = form.steps.flatMap((item, i) => {
          const branch = new Set(scope);
          const step = this.step(item, [...stepsPath, i], `${id}.in_parallel.${i}`, branch);
          branch.forEach((v) => set.add(v));
          return step ?? [];
        });
        set.forEach((v) => scope.add(v));
        if (!s) return undefined;
        return {
          common: s,
          step: compact({
            kind: 'in_parallel' as const,
            steps,
            limit: 'limit' in form ? form.limit : undefined,
            failFast: ('fail_fast' in form ? form.fail_fast : undefined) ?? false,
          }),
        };
      }
      case 'try': {
        const s = validate(src, TryStepSchema, raw, path, 'try step');
        const step = this.step(raw.try, [...path, 'try'], `${id}.try`, scope);
        return s && step && { common: s, step: { kind: 'try' as const, step } };
      }
    }
  }

  hooks(raw: Record<string, unknown>, path: Path, id: string, scope: Set<string>): Hooks | undefined {
    const hooks: Hooks = {};
    for (const hook of HOOK_KEYS) {
      if (raw[hook] === undefined) continue;
      const step = this.step(raw[hook], [...path, hook], `${id}.${hook}`, scope);
      if (step) hooks[hook] = step;
    }
    return Object.keys(hooks).length > 0 ? hooks : undefined;
  }

  /** Reports each ((.:name)) in `value` that no earlier load_var or enclosing across sets. */
  private checkLocals(value: unknown, path: Path, scope: Set<string>): void {
    if (typeof value === 'string') {
      for (const ref of findVarRefs(value)) {
        if (ref.source === '.' && !scope.has(ref.path[0])) {
          this.src.add(path, `local var \`${ref.path[0]}\` is not set by any load_var or across before this step`);
        }
      }
    } else if (Array.isArray(value)) value.forEach((v, i) => this.checkLocals(v, [...path, i], scope));
    else if (isPlainObject(value)) for (const [k, v] of Object.entries(value)) this.checkLocals(v, [...path, k], scope);
  }
}

/** Finds the job to run: the file itself, or `job` among a pipeline's jobs. */
function selectJob(
  src: Source,
  root: Record<string, unknown>,
  job: string | undefined,
  vars: Record<string, unknown>,
): { value: unknown; path: Path } | undefined {
  if (!('jobs' in root)) {
    if (job !== undefined && typeof root.name === 'string' && root.name !== job) {
      src.add(['name'], `this file is the single job \`${root.name}\`, not \`${job}\``);
      return undefined;
    }
    return { value: root, path: [] };
  }
  const pipeline = validate(src, PipelineSchema, root, [], 'pipeline');
  if (!pipeline) return undefined;
  // Names are matched after vars are interpolated (`name: test-((version))`), as fly does.
  const names = pipeline.jobs.map((j) => (isPlainObject(j) && typeof j.name === 'string' ? jobName(j.name, vars) : undefined));
  const listed = names.filter((n): n is string => n !== undefined);
  // A pipeline of one job needs no --job: there is nothing to pick.
  if (job === undefined && pipeline.jobs.length === 1) return { value: pipeline.jobs[0], path: ['jobs', 0] };
  if (job === undefined) {
    src.add(
      ['jobs'],
      `this is a pipeline with ${listed.length} job${listed.length === 1 ? '' : 's'} (${listed.join(', ')}); pass --job NAME to pick the one to run`,
    );
    return undefined;
  }
  const index = names.indexOf(job);
  if (index < 0) {
    const hint = nearest(job, listed);
    src.add(['jobs'], `no job \`${job}\` in this pipeline${hint ? `; did you mean \`${hint}\`?` : ''} (jobs: ${listed.join(', ')})`);
    return undefined;
  }
  return { value: pipeline.jobs[index], path: ['jobs', index] };
}

/** A job's name with the vars given filled in; refs without a value stay as text. */
function jobName(name: string, vars: Record<string, unknown>): string {
  const r = interpolate(name, (ref) => (ref.source === undefined ? lookupIn(vars, ref) : { found: false }));
  return typeof r.value === 'string' ? r.value : stringifyVar(r.value);
}

/** A file's `var_sources:`, in dependency order, and the refs their configs leave for the worker. */
export interface CompiledVarSources {
  sources: VarSourceConfig[];
  /** every name `var_sources:` declares, a bad entry's too: refs to it are no undefined var as well */
  declared: ReadonlySet<string>;
  /** the ((refs)) of their configs: to other var sources, or unsourced ones -v/-l do not give */
  deferred: DeferredVar[];
}

/**
 * The file's `var_sources:` (a pipeline's, or a one-off job file's), with static vars filled in.
 * As Concourse's, a config may use the vars of other var sources, `((other:var))`: the worker
 * resolves them, each source after those it reads (orderByDependency), so a ref to an undeclared
 * source or a cycle is refused here at the ref. Refs without a source that -v/-l do not give are
 * left for the workers' cluster-wide manager when `deferUnsourced` (a pipeline's always are, as
 * Concourse evaluates a var source's config with its global manager too).
 */
export function compileVarSources(
  src: Source,
  root: Record<string, unknown>,
  vars: Record<string, unknown>,
  deferUnsourced = false,
): CompiledVarSources {
  if (root.var_sources === undefined || root.var_sources === null) return { sources: [], declared: new Set(), deferred: [] };
  const path = ['var_sources'];
  if (!Array.isArray(root.var_sources)) {
    validate(src, z.array(VarSource), interpolateStatic(src, root.var_sources, path, vars), path, 'var_sources');
    return { sources: [], declared: new Set(), deferred: [] };
  }
  // Names first: a config may read any source the file declares, before it or after it.
  const entries = root.var_sources.map((entry: unknown, i) => {
    if (!isPlainObject(entry)) return interpolateStatic(src, entry, [...path, i], vars);
    const { config, ...rest } = entry;
    return { ...(interpolateStatic(src, rest, [...path, i], vars) as Record<string, unknown>), ...('config' in entry ? { config } : {}) };
  });
  const names = entries.flatMap((e) => (isPlainObject(e) && typeof e.name === 'string' ? [e.name] : []));
  const declared = new Set(names);
  const deferred: DeferredVar[] = [];
  const interpolated = entries.map((entry, i) => {
    if (!isPlainObject(entry) || !('config' in entry)) return entry;
    const r = interpolateDeferring(src, entry.config, [...path, i, 'config'], {
      vars,
      varSources: declared,
      deferUnsourced,
      deferrableRoot: true,
    });
    for (const d of r.deferred) if (!deferred.some((x) => x.ref === d.ref)) deferred.push(d);
    return { ...entry, config: r.value };
  });
  const refs = interpolated.map((entry, i) => (isPlainObject(entry) ? refStrings(entry.config, [...path, i, 'config']) : []));
  for (const { path: p, ref } of refs.flat())
    if (ref.source === '.' || ref.source === SVC_SOURCE)
      src.add(
        p,
        `\`((${ref.raw}))\`: a var source's config cannot use local vars or service addresses, which exist only in a build's steps`,
      );
  // A ref to an undeclared source was reported where it is, by interpolateDeferring; cycles are here.
  const named = interpolated.flatMap((e, i) =>
    isPlainObject(e) && typeof e.name === 'string' ? [{ name: e.name, config: e.config, i }] : [],
  );
  const { ordered, problems } = orderByDependency(named);
  for (const problem of problems)
    src.add([...path, problem.source.i, 'config', ...problem.dependency.path], dependencyMessage(problem, names));
  const list: VarSourceConfig[] = [];
  const seen = new Set<string>();
  interpolated.forEach((entry, i) => {
    const at = [...path, i];
    // What a ref gives is known on the worker only, which checks the config again once it is resolved.
    for (const r of refs[i]) src.suppress(r.path);
    const parsed = VarSource.safeParse(entry);
    const before = src.issues.length;
    // Its own type's schema, whose keys an unknown key's message can suggest from.
    const own = VarSource.options.find((o) => isPlainObject(entry) && o.shape.type.value === entry.type);
    if (!parsed.success) validate(src, own ?? VarSource, entry, at, 'var_sources entry');
    const source = parsed.success
      ? (parsed.data as VarSourceConfig)
      : refs[i].length > 0 && src.issues.length === before
        ? (entry as VarSourceConfig)
        : undefined;
    if (!source) return;
    if (seen.has(source.name)) src.add([...at, 'name'], `duplicate var source \`${source.name}\``);
    seen.add(source.name);
    list.push(source);
  });
  const rank = new Map(ordered.map((s, n) => [s.name, n]));
  return { sources: list.sort((x, y) => (rank.get(x.name) ?? 0) - (rank.get(y.name) ?? 0)), declared, deferred };
}

/** Every ref in a value's strings, with the path of the string that holds it. */
function refStrings(value: unknown, base: Path): { path: Path; ref: VarRef }[] {
  const out: { path: Path; ref: VarRef }[] = [];
  const walk = (v: unknown, p: Path): void => {
    if (typeof v === 'string') for (const ref of findVarRefs(v)) out.push({ path: p, ref });
    else if (Array.isArray(v)) v.forEach((item, i) => walk(item, [...p, i]));
    else if (isPlainObject(v)) for (const [k, item] of Object.entries(v)) walk(item, [...p, k]);
  };
  walk(value, base);
  return out;
}

export interface CompileOptions {
  text: string;
  file: string;
  job?: string;
  vars?: Record<string, unknown>;
  /** the workers have a cluster-wide credential manager: unsourced vars -v/-l do not give are resolved there */
  deferUnsourced?: boolean;
  /** `text` already parsed, without issues: a pipeline's file, parsed once for all its jobs (Source.fork) */
  source?: Source;
}

export function compilePlan(opts: CompileOptions): CompiledPlan {
  const src = opts.source ?? new Source(opts.file, opts.text);
  src.check();
  const tooLarge = varProblems(opts.vars ?? {});
  if (tooLarge.length > 0) throw new Error(tooLarge.join('\n'));
  if (!isPlainObject(src.value)) {
    src.add([], 'a plan file must be a map: a Concourse job with `plan:`, or a pipeline with `jobs:`');
    src.check();
  }
  const selected = selectJob(src, src.value as Record<string, unknown>, opts.job, opts.vars ?? {});
  src.check();
  const { path } = selected!;
  const {
    sources: varSources,
    declared,
    deferred: sourceRefs,
  } = compileVarSources(src, src.value as Record<string, unknown>, opts.vars ?? {}, opts.deferUnsourced);
  const deferring = { vars: opts.vars ?? {}, varSources: declared, deferUnsourced: opts.deferUnsourced };
  // Only the chosen job is interpolated: other jobs' vars need not be set.
  const { value, deferred } = interpolateDeferring(src, selected!.value, path, deferring);
  const job = validate(src, JobSchema, value, path, 'job');
  const resources = new Resources(src, src.value as Record<string, unknown>, deferring);
  const compiler = new Compiler(src, resources);
  const scope = new Set<string>();
  const jobValue = isPlainObject(value) ? value : {};
  const steps = Array.isArray(jobValue.plan) ? compiler.steps(jobValue.plan, [...path, 'plan'], 'plan', scope) : [];
  // Job-level hooks are hooks of the root `do`, as Concourse runs them around the whole plan.
  const hooks = compiler.hooks(jobValue, path, 'plan', scope);
  src.check();
  const plan: DoStep = compact({
    kind: 'do' as const,
    id: 'plan',
    line: src.line([...path, 'plan']),
    steps: job?.tags ? steps.map((st) => withJobTags(st, job.tags ?? [])) : steps,
    hooks,
  });
  const compiled: CompiledPlan = {
    name: job?.name ?? basename(opts.file, extname(opts.file)),
    source: opts.file,
    plan,
    // The refs of the resources its steps use are checked before the first step too.
    // So are those of the var sources' configs: as Concourse's, a build resolves every var source.
    ...credentialsOf(varSources, uniqueRefs([...sourceRefs, ...deferred, ...resources.deferred()])),
  };
  checkPlan(src, compiled, [...path, 'name']);
  src.check();
  checkPayloadSize(compiled);
  return compiled;
}

/** The first use of each ref. */
function uniqueRefs(refs: DeferredVar[]): DeferredVar[] {
  const seen = new Set<string>();
  return refs.filter((r) => !seen.has(r.ref) && seen.add(r.ref));
}

// Absent when unused, so a plan without credentials is the same payload as before.
function credentialsOf(varSources: VarSourceConfig[], deferred: DeferredVar[]): Pick<CompiledPlan, 'varSources' | 'deferredVars'> {
  return {
    ...(varSources.length > 0 ? { varSources } : {}),
    ...(deferred.length > 0 ? { deferredVars: deferred } : {}),
  };
}

/** Job-level `tags` (Concourse 8.3) become the tags of every step that sets none. */
function withJobTags(step: Step, tags: string[]): Step {
  const own: Step = { ...step, tags: step.tags ?? tags };
  const hooks = step.hooks && Object.fromEntries(Object.entries(step.hooks).map(([k, h]) => [k, h && withJobTags(h, tags)]));
  if (hooks) own.hooks = hooks;
  if (own.kind === 'do' || own.kind === 'in_parallel') return { ...own, steps: own.steps.map((c) => withJobTags(c, tags)) };
  if (own.kind === 'try') return { ...own, step: withJobTags(own.step, tags) };
  return own;
}

/** Reads and compiles a plan file. Throws PlanError. */
export function loadPlan(opts: Omit<CompileOptions, 'text'>): CompiledPlan {
  let text: string;
  try {
    text = readYamlFile(opts.file);
  } catch (e) {
    if (e instanceof PlanError) throw e;
    throw new Error(`cannot read plan file ${opts.file}: ${(e as Error).message}`, { cause: e });
  }
  return compilePlan({ ...opts, text });
}
