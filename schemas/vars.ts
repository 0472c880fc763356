// Static vars: `-v name=value` and `-l vars.yml` from the caller, interpolated
// into the plan at compile time. Local vars ((.:name)) are left for run time.
import YAML from 'yaml';
import { readYamlFile } from './checks';
import { PlanError, Source, type Path } from './errors';
import {
  interpolate,
  interpolateKey,
  isPlainObject,
  keyName,
  lookupIn,
  parseVarRef,
  rekey,
  SVC_SOURCE,
  type KeyResult,
  type Lookup,
  type VarRef,
} from './interpolate';

/**
 * Parses `-v` values ("name=value"). Values stay strings, as fly's `-v`; a
 * dotted name sets a field (`a.b=c` gives {a: {b: "c"}}), as fly does.
 * `yaml` flags (`-y name=value`) are parsed as YAML (`-y n=1` gives a number,
 * `-y v={ref: abc}` a map) and, as in fly, win over `-v` for the same name.
 */
export function parseVarFlags(flags: string[], yaml: string[] = []): Record<string, unknown> {
  const vars: Record<string, unknown> = {};
  const set = (flag: string, option: '-v' | '-y', value: (text: string) => unknown) => {
    const eq = flag.indexOf('=');
    const ref = eq > 0 ? parseVarRef(flag.slice(0, eq)) : undefined;
    if (!ref || ref.source !== undefined || ref.path.some((p) => p === '')) throw new Error(`${option} needs name=value, got \`${flag}\``);
    let target = vars;
    for (const seg of ref.path.slice(0, -1)) {
      if (!isPlainObject(target[seg])) target[seg] = {};
      target = target[seg] as Record<string, unknown>;
    }
    target[ref.path[ref.path.length - 1]] = value(flag.slice(eq + 1));
  };
  for (const flag of flags) set(flag, '-v', (text) => text);
  for (const flag of yaml)
    set(flag, '-y', (text) => {
      try {
        return YAML.parse(text) as unknown;
      } catch (err) {
        throw new Error(`-y ${flag}: the value is not valid YAML: ${(err as Error).message.split('\n')[0]}`, { cause: err });
      }
    });
  return vars;
}

/** The static vars of a command's `-l`, `-v` and `-y` flags: flags win over files, as fly's. */
export function varsFromFlags(opts: { var: string[]; yamlVar?: string[]; loadVarsFrom: string[] }): Record<string, unknown> {
  return { ...loadVarFiles(opts.loadVarsFrom), ...parseVarFlags(opts.var, opts.yamlVar) };
}

/**
 * Reads `-l` files (YAML maps); later files override earlier ones. Throws PlanError. Read as
 * a plan file is, at most MAX_YAML_BYTES: `-l /dev/zero` is refused there instead of filling
 * the memory; a pipe (`-l <(lpass show ...)`, as fly users write) is still read.
 */
export function loadVarFiles(paths: string[]): Record<string, unknown> {
  const vars: Record<string, unknown> = {};
  for (const file of paths) {
    let text: string;
    try {
      text = readYamlFile(file);
    } catch (e) {
      if (e instanceof PlanError) throw e;
      throw new Error(`cannot read vars file ${file}: ${(e as Error).message}`, { cause: e });
    }
    const src = new Source(file, text);
    src.check();
    if (src.value === null || src.value === undefined) continue;
    if (!isPlainObject(src.value)) src.add([], 'a vars file must be a map of var names to values');
    src.check();
    Object.assign(vars, src.value);
  }
  return vars;
}

/** A ((var)) left for the build's worker to resolve from a credential manager, and where the plan uses it. */
export interface DeferredVar {
  /** the text between the parentheses: `source:name.field`, or `name.field` for the worker's cluster-wide manager */
  ref: string;
  /** FILE:LINE:COL: PATH of the first use, for the error when no manager has it */
  at: string;
}

/** Static vars only: every undefined ref is an error at the string that holds it. */
export function interpolateStatic(src: Source, value: unknown, base: Path, vars: Record<string, unknown>): unknown {
  return interpolateDeferring(src, value, base, { vars }).value;
}

export interface StaticVarOptions {
  vars: Record<string, unknown>;
  /** names of the plan's `var_sources:`, whose refs are resolved when a task runs */
  varSources?: ReadonlySet<string>;
  /** refs without a source that -v/-l do not give are left for the worker's cluster-wide credential manager */
  deferUnsourced?: boolean;
  /** `value` is a task config (a task file), not a plan */
  configRoot?: boolean;
  /** every string of `value` may keep credential refs (a resource's or a resource type's `source`) */
  deferrableRoot?: boolean;
}

// Where credential refs may stay until a task or service runs: what its step hands its process.
// Anything the compiler or the workflow must read (names, files, attempts, inputs, ports) is static.
const TASK_DEFERRABLE = new Set(['params', 'vars']);
const SERVICE_DEFERRABLE = new Set(['params']);
const CONFIG_DEFERRABLE = new Set(['params', 'run', 'image_resource']);
// A get's or put's params go into the resource script's request, built in its activity.
const RESOURCE_STEP_DEFERRABLE = new Set(['params', 'get_params']);
// Concourse evaluates a set_pipeline plan's name, team, vars and instance vars with the build's credentials when it runs.
const SET_PIPELINE_DEFERRABLE = new Set(['set_pipeline', 'vars', 'instance_vars', 'team']);

/** A step that may have `services:` (schemas/plan.ts checks which). */
function hasServices(v: Record<string, unknown>): boolean {
  return typeof v.task === 'string' || 'do' in v || 'in_parallel' in v;
}

function missingMessage(ref: VarRef, varSources: ReadonlySet<string>, deferrable: boolean): string {
  if (ref.source !== undefined) {
    if (!varSources.has(ref.source)) {
      const declared = varSources.size ? `var_sources declared: ${[...varSources].join(', ')}` : 'the plan declares no var_sources';
      return `undefined var \`${ref.raw}\`: no var source named \`${ref.source}\` (${declared})`;
    }
    return `var \`${ref.raw}\` comes from a credential manager, which only a resource's source, a get's or put's params, a task's params, vars and config and a service's params and config (params, run, image_resource) may use; pass the value with -v or -l here`;
  }
  const fromWorker = deferrable ? ", or from the workers' credential manager with --creds-from-worker" : '';
  return `undefined var \`${ref.raw}\`; pass it with -v ${ref.path[0]}=VALUE or in a -l vars file${fromWorker}`;
}

/**
 * Replaces static ((vars)) in `value` (found at `base` in `src`), reporting each
 * undefined one at the string that holds it. Local ((.:vars)) stay as text, and so do
 * credential refs where a task resolves them when it runs (returned as `deferred`).
 */
export function interpolateDeferring(
  src: Source,
  value: unknown,
  base: Path,
  opts: StaticVarOptions,
): { value: unknown; deferred: DeferredVar[] } {
  const varSources = opts.varSources ?? new Set<string>();
  const deferred = new Map<string, DeferredVar>();
  // A service entry: its params and its config are what its activity resolves when it starts.
  const walkService = (entry: unknown, path: Path): unknown => {
    if (!isPlainObject(entry)) return walk(entry, path, false);
    return rebuild(entry, keysOf(entry, path, false), path, (item, k, child) =>
      k === 'config' ? walkConfig(item, child) : walk(item, child, SERVICE_DEFERRABLE.has(k)),
    );
  };
  const lookup =
    (path: Path, deferrable: boolean): Lookup =>
    (ref) => {
      // Local vars and service addresses are known only when the step runs.
      if (ref.source === '.' || ref.source === SVC_SOURCE) return { found: true, value: `((${ref.raw}))` };
      const hit = ref.source === undefined ? lookupIn(opts.vars, ref) : { found: false as const };
      if (hit.found) return hit;
      const fromManager = ref.source === undefined ? opts.deferUnsourced === true : varSources.has(ref.source);
      if (!deferrable || !fromManager) return { found: false };
      if (!deferred.has(ref.raw)) deferred.set(ref.raw, { ref: ref.raw, at: src.where(path) });
      return { found: true, value: `((${ref.raw}))` };
    };
  const reportMissing = (path: Path, missing: VarRef[], deferrable: boolean) => {
    for (const ref of missing) src.add(path, missingMessage(ref, varSources, deferrable));
    if (missing.length > 0) src.suppress(path);
  };
  // A map's keys are interpolated as Concourse does (interpolateKey), where a credential ref
  // stays if the map's values may keep one; its values are walked under the keys they become.
  const keysOf = (v: Record<string, unknown>, path: Path, deferrable: boolean): KeyResult[] =>
    Object.keys(v).map((k) => {
      const key = interpolateKey(k, lookup([...path, k], deferrable));
      if ('missing' in key) reportMissing([...path, k], key.missing, deferrable);
      return key;
    });
  const rebuild = (v: Record<string, unknown>, keys: KeyResult[], path: Path, value: (item: unknown, key: string, path: Path) => unknown) =>
    rekey(
      Object.entries(v).map(([k, item], i): [string, KeyResult, unknown] => [k, keys[i], value(item, keyName(k, keys[i]), [...path, k])]),
      (k, problem) => src.add([...path, k], problem),
    );
  const walk = (v: unknown, path: Path, deferrable: boolean): unknown => {
    if (typeof v === 'string') {
      const r = interpolate(v, lookup(path, deferrable));
      reportMissing(path, r.missing, deferrable);
      return r.value;
    }
    if (Array.isArray(v)) return v.map((item, i) => walk(item, [...path, i], deferrable));
    if (isPlainObject(v)) {
      const keys = keysOf(v, path, deferrable);
      // What the map is, by the keys it has once filled in: Concourse fills in the whole text before reading it.
      const same = Object.keys(v).every((k, i) => keyName(k, keys[i]) === k);
      const view = same ? v : Object.fromEntries(Object.entries(v).map(([k, item], i) => [keyName(k, keys[i]), item]));
      const isTask = typeof view.task === 'string';
      const isResourceStep = typeof view.get === 'string' || typeof view.put === 'string';
      const isSetPipeline = typeof view.set_pipeline === 'string';
      return rebuild(v, keys, path, (item, k, child) => {
        if (!deferrable && isTask && k === 'config') return walkConfig(item, child);
        if (!deferrable && k === 'services' && Array.isArray(item) && hasServices(view))
          return item.map((entry, i) => walkService(entry, [...child, i]));
        return walk(
          item,
          child,
          deferrable ||
            (isTask && TASK_DEFERRABLE.has(k)) ||
            (isResourceStep && RESOURCE_STEP_DEFERRABLE.has(k)) ||
            (isSetPipeline && SET_PIPELINE_DEFERRABLE.has(k)),
        );
      });
    }
    return v;
  };
  const walkConfig = (config: unknown, path: Path): unknown => {
    if (!isPlainObject(config)) return walk(config, path, false);
    return rebuild(config, keysOf(config, path, false), path, (item, k, child) => walk(item, child, CONFIG_DEFERRABLE.has(k)));
  };
  const out = opts.configRoot ? walkConfig(value, base) : walk(value, base, opts.deferrableRoot === true);
  return { value: out, deferred: [...deferred.values()] };
}
