// What Concourse refuses in a pipeline (atc/configvalidate/validate.go, atc/step_validator.go)
// beyond what compiling its jobs and resources finds: groups, unused and twice-named resources
// and types, build log retention, `display`, a pipeline without jobs, `passed:` globs that match
// no job, and cycles of `passed:`. Each problem goes to the Source, at its file:line.
import { z } from 'zod';
import type { Path, Source } from './errors';
import { isPlainObject } from './interpolate';

/** What the checks need of a compiled job. */
interface JobLinks {
  name: string;
  /** the resources its gets and puts name */
  resources: Set<string>;
  /** its gets' `passed:` as written: job names or globs */
  inputs: { name: string; resource: string; passed: string[] }[];
}

/**
 * Go's path.Match (Concourse matches `passed:` with it): `*` any run of characters but `/`, `?` one,
 * `[...]` a class (`^` negates, `a-z` ranges), `\` quotes the next. A malformed pattern matches
 * nothing, as Concourse ignores path.Match's error.
 */
export function pathMatch(pattern: string, name: string): boolean {
  const re = globRegExp(pattern, { anyChar: '[^/]', negation: '^', braces: false });
  return re !== undefined && re.test(name);
}

/**
 * gobwas/glob as Concourse compiles a group's job patterns (no separators): `*` any run, `?` one
 * character, `[...]` a class (`!` negates), `{a,b}` alternatives, `\` quotes the next. Undefined
 * when the pattern is malformed.
 */
export function groupGlob(pattern: string): RegExp | undefined {
  return globRegExp(pattern, { anyChar: '[^]', negation: '!', braces: true });
}

function globRegExp(pattern: string, opts: { anyChar: string; negation: string; braces: boolean }): RegExp | undefined {
  const chars = [...pattern];
  let out = '';
  let depth = 0;
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i];
    if (c === '\\') {
      if (i + 1 >= chars.length) return undefined;
      out += escapeRegExp(chars[++i]);
    } else if (c === '*') out += `${opts.anyChar}*`;
    else if (c === '?') out += opts.anyChar;
    else if (c === '[') {
      let j = i + 1;
      let cls = '';
      if (chars[j] === opts.negation) {
        cls += '^';
        j++;
      }
      const start = j;
      for (; j < chars.length && (chars[j] !== ']' || j === start); j++) {
        if (chars[j] === '\\') {
          if (j + 1 >= chars.length) return undefined;
          cls += escapeRegExp(chars[++j], true);
        } else if (chars[j] === '-' && j > start && j + 1 < chars.length && chars[j + 1] !== ']') cls += '-';
        else cls += escapeRegExp(chars[j], true);
      }
      if (j >= chars.length || j === start) return undefined;
      out += `[${cls}]`;
      i = j;
    } else if (opts.braces && c === '{') {
      depth++;
      out += '(?:';
    } else if (opts.braces && c === '}' && depth > 0) {
      depth--;
      out += ')';
    } else if (opts.braces && c === ',' && depth > 0) out += '|';
    else out += escapeRegExp(c);
  }
  if (depth > 0) return undefined;
  try {
    return new RegExp(`^${out}$`, 'u');
  } catch {
    return undefined;
  }
}

/** `c` as a literal; `-` is escaped only in a class, where the `u` flag allows it. */
function escapeRegExp(c: string, inClass = false): string {
  return /[\\^$.*+?()[\]{}|/]/.test(c) || (inClass && c === '-') ? `\\${c}` : c;
}

const GroupSchema = z.object({
  name: z.string(),
  jobs: z.array(z.string()).optional(),
  resources: z.array(z.string()).optional(),
});

const RetentionSchema = z.object({
  builds: z.number().int().optional(),
  days: z.number().int().optional(),
  minimum_succeeded_builds: z.number().int().optional(),
});

/** A name, unless it holds a ((var)): Concourse checks names after interpolation, which the worker does here. */
function plainName(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' && !value.includes('((') ? value : undefined;
}

/**
 * Concourse's checks of a pipeline file; `jobs` in the file's order, undefined when some job did
 * not compile (what reads every job's steps would then report noise).
 */
export function validatePipeline(src: Source, root: Record<string, unknown>, jobs: JobLinks[] | undefined): void {
  if (Array.isArray(root.jobs) && root.jobs.length === 0) src.add(['jobs'], 'a pipeline must contain at least one job');
  if (jobs) checkGroups(src, root, jobs);
  checkResources(src, root, jobs);
  checkTypes(src, root);
  checkRetention(src, root);
  checkDisplay(src, root.display);
  if (Array.isArray(root.jobs)) root.jobs.forEach((job, i) => checkTaskPlatforms(src, job, ['jobs', i]));
}

/**
 * Concourse's TaskConfig.Validate, which its step validator runs on every inline task `config:`:
 * `platform` is required (a one-off plan's task may leave it out; a pipeline is Concourse's).
 */
function checkTaskPlatforms(src: Source, value: unknown, path: Path): void {
  if (Array.isArray(value)) return value.forEach((v, i) => checkTaskPlatforms(src, v, [...path, i]));
  if (!isPlainObject(value)) return;
  if ('task' in value && isPlainObject(value.config) && value.config.platform === undefined)
    src.add([...path, 'config'], "missing 'platform': Concourse requires it in a task config (e.g. `platform: linux`)");
  // Only where steps are: a put's params may hold any map.
  for (const key of STEP_KEYS) if (key in value) checkTaskPlatforms(src, value[key], [...path, key]);
}

/** The keys of a job or step whose value holds steps (in_parallel's map form, its `steps`). */
const STEP_KEYS = ['plan', 'do', 'in_parallel', 'steps', 'aggregate', 'try', 'on_success', 'on_failure', 'on_abort', 'on_error', 'ensure'];

/** Each job's `passed:` with its globs replaced by the jobs they match, as Concourse saves a job's inputs. */
export function expandPassed(src: Source, jobs: JobLinks[], indexOf: (job: string) => number): Map<string, string[][]> {
  const expanded = new Map<string, string[][]>();
  for (const job of jobs) {
    const where: Path = ['jobs', indexOf(job.name), 'name'];
    expanded.set(
      job.name,
      job.inputs.map((input) => {
        const names = input.passed.flatMap((pattern) => {
          const matched = jobs.filter((j) => pathMatch(pattern, j.name));
          if (matched.length === 0) {
            const glob = /[*?[\\]/.test(pattern);
            src.add(
              where,
              glob
                ? `job ${job.name}: get ${input.name} is passed: [${pattern}], but no job matches ${pattern}`
                : `job ${job.name}: get ${input.name} is passed: [${pattern}], but there is no job ${pattern}`,
            );
          }
          for (const other of matched)
            if (!other.resources.has(input.resource))
              src.add(
                where,
                `job ${job.name}: get ${input.name} is passed: [${pattern}], but job ${other.name} does not get or put resource ${input.resource}`,
              );
          return matched.map((j) => j.name);
        });
        return [...new Set(names)];
      }),
    );
  }
  checkCycles(src, jobs, expanded, indexOf);
  return expanded;
}

/**
 * Concourse's detectCycle: from each job in turn, follow `passed:` upstream; the first job met
 * again while still on the path is where the cycle starts. The scheduler would otherwise wait
 * forever on jobs that each wait for the other.
 */
function checkCycles(src: Source, jobs: JobLinks[], passed: Map<string, string[][]>, indexOf: (job: string) => number): void {
  const byName = new Map(jobs.map((j) => [j.name, j]));
  for (const root of jobs) {
    const state = new Map<string, 'visiting' | 'visited'>();
    const visit = (name: string): string | undefined => {
      if (state.get(name) === 'visiting') return name;
      if (state.get(name) === 'visited' || !byName.has(name)) return undefined;
      state.set(name, 'visiting');
      for (const upstreams of passed.get(name) ?? [])
        for (const upstream of upstreams) {
          const start = visit(upstream);
          if (start) return start;
        }
      state.set(name, 'visited');
      return undefined;
    };
    const start = visit(root.name);
    if (start) {
      src.add(
        ['jobs', indexOf(start), 'name'],
        `the pipeline's passed: constraints contain a cycle that starts at job ${start}: no build of it could ever start`,
      );
      return;
    }
  }
}

function checkGroups(src: Source, root: Record<string, unknown>, jobs: JobLinks[]): void {
  if (!Array.isArray(root.groups) || root.groups.length === 0) return;
  const resources = new Set(namesOf(root.resources));
  const grouped = new Set<string>();
  const seen = new Map<string, number>();
  root.groups.forEach((raw, i) => {
    const parsed = GroupSchema.safeParse(raw);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) src.add(['groups', i, ...(issue.path as Path)], issue.message);
      return;
    }
    const g = parsed.data;
    const first = seen.get(g.name);
    if (first !== undefined)
      src.add(['groups', i, 'name'], `a second group named ${g.name} (groups[${first}] is the first): duplicate names are not allowed`);
    else seen.set(g.name, i);
    (g.jobs ?? []).forEach((pattern, k) => {
      if (pattern.includes('((')) return;
      const glob = groupGlob(pattern);
      if (!glob) return src.add(['groups', i, 'jobs', k], `invalid glob expression '${pattern}' for group ${g.name}`);
      const matched = jobs.filter((j) => glob.test(j.name));
      if (matched.length === 0) src.add(['groups', i, 'jobs', k], `no jobs match '${pattern}' for group ${g.name}`);
      for (const j of matched) grouped.add(j.name);
    });
    (g.resources ?? []).forEach((r, k) => {
      if (!r.includes('((') && !resources.has(r)) src.add(['groups', i, 'resources', k], `group ${g.name} has unknown resource ${r}`);
    });
  });
  jobs.forEach((j, index) => {
    if (!grouped.has(j.name)) src.add(['jobs', index, 'name'], `job ${j.name} belongs to no group (with groups:, every job needs one)`);
  });
}

function namesOf(list: unknown): string[] {
  return Array.isArray(list) ? list.flatMap((r) => (isPlainObject(r) && typeof r.name === 'string' ? [r.name] : [])) : [];
}

/** Resources: named once each, and each used by a get or put of some job. */
function checkResources(src: Source, root: Record<string, unknown>, jobs: JobLinks[] | undefined): void {
  if (!Array.isArray(root.resources)) return;
  const used = jobs && new Set(jobs.flatMap((j) => [...j.resources]));
  const seen = new Map<string, number>();
  root.resources.forEach((raw, i) => {
    const name = isPlainObject(raw) ? plainName(raw.name) : undefined;
    if (name === undefined) return;
    const first = seen.get(name);
    if (first !== undefined)
      return src.add(['resources', i, 'name'], `resources[${first}] and resources[${i}] have the same name (${name})`);
    seen.set(name, i);
    if (used && !used.has(name))
      src.add(['resources', i, 'name'], `resource ${name} is not used: no job gets or puts it (Concourse refuses unused resources)`);
  });
}

/** Resource types and prototypes share one namespace, and each needs a type. */
function checkTypes(src: Source, root: Record<string, unknown>): void {
  const seen = new Map<string, string>();
  for (const section of ['resource_types', 'prototypes'] as const) {
    const list = root[section];
    if (!Array.isArray(list)) continue;
    list.forEach((raw, i) => {
      if (!isPlainObject(raw)) return;
      const name = plainName(raw.name);
      if (name === undefined) return;
      const first = seen.get(name);
      if (first !== undefined) src.add([section, i, 'name'], `${first} and ${section}[${i}] have the same name (${name})`);
      else seen.set(name, `${section}[${i}]`);
      if (raw.type === undefined || raw.type === '') src.add([section, i], `${section}[${i}] (${name}) has no type`);
    });
  }
}

function checkRetention(src: Source, root: Record<string, unknown>): void {
  if (!Array.isArray(root.jobs)) return;
  root.jobs.forEach((job, i) => {
    if (!isPlainObject(job)) return;
    const where: Path = ['jobs', i];
    const old = job.build_logs_to_retain;
    if (old !== undefined && !Number.isInteger(old)) src.add([...where, 'build_logs_to_retain'], 'build_logs_to_retain must be an integer');
    if (job.build_log_retention !== undefined && old !== undefined && old !== 0)
      return src.add([...where, 'build_log_retention'], "a job can't use both build_log_retention and build_logs_to_retain", {
        key: true,
      });
    if (typeof old === 'number' && old < 0) src.add([...where, 'build_logs_to_retain'], `negative build_logs_to_retain: ${old}`);
    if (job.build_log_retention === undefined) return;
    const parsed = RetentionSchema.safeParse(job.build_log_retention);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) src.add([...where, 'build_log_retention', ...(issue.path as Path)], issue.message);
      return;
    }
    const r = parsed.data;
    for (const key of ['builds', 'days', 'minimum_succeeded_builds'] as const)
      if ((r[key] ?? 0) < 0) src.add([...where, 'build_log_retention', key], `negative build_log_retention.${key}: ${r[key]}`);
    if ((r.builds ?? 0) > 0 && (r.minimum_succeeded_builds ?? 0) > (r.builds ?? 0))
      src.add(
        [...where, 'build_log_retention', 'minimum_succeeded_builds'],
        `build_log_retention.minimum_succeeded_builds (${r.minimum_succeeded_builds}) is greater than build_log_retention.builds (${r.builds})`,
      );
  });
}

/**
 * Go's url.Parse refuses an empty scheme before a colon, control characters, a bad %-escape, and
 * a colon in the first segment of a URL without a scheme.
 */
function checkDisplay(src: Source, display: unknown): void {
  if (display === undefined || display === null) return;
  if (!isPlainObject(display)) return src.add(['display'], 'display must be a map (background_image, background_filter)');
  const image = display.background_image;
  if (image === undefined) return;
  const where: Path = ['display', 'background_image'];
  if (typeof image !== 'string') return src.add(where, 'background_image must be a URL');
  // eslint-disable-next-line no-control-regex
  if (image.startsWith(':') || /[\x00-\x1f\x7f]/.test(image) || /%(?![0-9a-fA-F]{2})/.test(image))
    return src.add(where, `background_image is not a valid URL: ${image}`);
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(image)?.[1].toLowerCase();
  if (scheme === undefined && image.split(/[/?#]/)[0].includes(':')) return src.add(where, `background_image is not a valid URL: ${image}`);
  if (scheme !== undefined && scheme !== 'http' && scheme !== 'https')
    src.add(where, `background_image's scheme must be http, https or none (a relative URL), not ${scheme}`);
}
