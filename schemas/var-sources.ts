// Credential managers for ((vars)), as Concourse's var_sources and its cluster-wide manager:
// the config a plan's `var_sources:` entry or a worker's CAUSEWAY_CREDS holds. Values are
// looked up inside activities (activities/creds/), never in the workflow.
import { z } from 'zod';
import { findVarRefs, isPlainObject, SVC_SOURCE } from './interpolate';
import { parseDuration } from './units';

/** Concourse's `dummy`: vars given in the config itself (for tests and demos). */
const DummyConfig = z.strictObject({ vars: z.record(z.string(), z.unknown()).default({}) });

/**
 * Concourse's `kubernetes`: Secrets named `<pipeline>.<name>` then `<name>` in namespace
 * `<namespace_prefix><team>`; a Secret's `value` key is the var, else the whole map is.
 */
const KubernetesConfig = z.strictObject({
  namespace_prefix: z.string().default('concourse-'),
  /** one namespace for every team instead (the worker's own, in deploy/): `<namespace>/<pipeline>.<name>`, `<namespace>/<name>` */
  namespace: z.string().min(1).optional(),
  /** a kubeconfig file; default: in-cluster service account, else KUBECONFIG / ~/.kube/config */
  kubeconfig: z.string().min(1).optional(),
  context: z.string().min(1).optional(),
});

/**
 * Concourse's `vault` with a KV v2 mount: `<path_prefix>/<team>/<pipeline>/<name>`, then
 * `<path_prefix>/<team>/<name>`, then `<path_prefix>/<shared_path>/<name>`; the mount is the
 * first segment of path_prefix. A secret's `value` key is the var, else the whole map is.
 */
const VaultConfig = z.strictObject({
  url: z.url({ protocol: /^https?$/, error: 'vault url must be http:// or https://' }),
  client_token: z.string().min(1, 'vault needs client_token'),
  path_prefix: z
    .string()
    .regex(/^\/?[^/]+(\/[^/]+)*\/?$/, 'path_prefix is a path like /concourse')
    .default('/concourse'),
  shared_path: z.string().min(1).optional(),
  /** Vault Enterprise / HCP namespace, sent as X-Vault-Namespace */
  namespace: z.string().min(1).optional(),
  /** PEM of the CA that signed the server's certificate */
  ca_cert: z.string().min(1).optional(),
});

/** Concourse's idtoken.MaxExpiresIn. */
const IDTOKEN_MAX_EXPIRES_IN_MS = 24 * 3600 * 1000;

/**
 * Concourse's `idtoken` (atc/creds/idtoken/manager.go): no store but a JWT the worker signs,
 * `((name:token))`, naming the build's team, pipeline, instance vars and job. Only a var source:
 * Concourse's manager is never the cluster-wide one.
 */
const IdTokenConfig = z.strictObject({
  /** the `aud` claim */
  audience: z.array(z.string({ error: 'audience must be a list of strings' }), { error: 'audience must be a list of strings' }).optional(),
  /** how much of team/pipeline/instance vars/job the `sub` claim names; Concourse takes "" as pipeline too */
  subject_scope: z
    .enum(['team', 'pipeline', 'instance', 'job', ''], { error: 'subject_scope must be one of team, pipeline, instance, job' })
    .default('pipeline'),
  expires_in: z
    .string({ error: 'expires_in must be a string, a Go duration like "15m"' })
    .default('1h')
    .check((ctx) => {
      let ms: number;
      try {
        ms = parseDuration(ctx.value);
      } catch (err) {
        ctx.issues.push({ code: 'custom', message: (err as Error).message, input: ctx.value });
        return;
      }
      if (ms > IDTOKEN_MAX_EXPIRES_IN_MS) ctx.issues.push({ code: 'custom', message: 'expires_in must be <= 24h0m0s', input: ctx.value });
    }),
  algorithm: z.enum(['RS256', 'ES256'], { error: 'algorithm must be RS256 or ES256' }).default('RS256'),
});
export type IdTokenConfig = z.infer<typeof IdTokenConfig>;

const Dummy = z.strictObject({ type: z.literal('dummy'), config: DummyConfig.default({ vars: {} }) });
const Kubernetes = z.strictObject({ type: z.literal('kubernetes'), config: KubernetesConfig.default({ namespace_prefix: 'concourse-' }) });
const Vault = z.strictObject({ type: z.literal('vault'), config: VaultConfig });
const IdToken = z.strictObject({
  type: z.literal('idtoken'),
  config: IdTokenConfig.default({ subject_scope: 'pipeline', expires_in: '1h', algorithm: 'RS256' }),
});

export const CredentialManagerConfig = z.discriminatedUnion('type', [Dummy, Kubernetes, Vault], {
  error: (issue) =>
    isIdToken(issue.input)
      ? "idtoken is only a pipeline's var source (var_sources:), never the cluster-wide manager (as Concourse's)"
      : 'type must be one of dummy, kubernetes, vault',
});
export type CredentialManagerConfig = z.infer<typeof CredentialManagerConfig>;

function isIdToken(input: unknown): boolean {
  return typeof input === 'object' && input !== null && (input as { type?: unknown }).type === 'idtoken';
}

const sourceName = {
  name: z.string().regex(/^[A-Za-z0-9_-]+$/, 'a var source name is letters, digits, _ and - (the `name` of ((name:var)))'),
};
/** One entry of a plan's `var_sources:`, named for ((name:var)) refs. */
export const VarSource = z.discriminatedUnion(
  'type',
  [Dummy.extend(sourceName), IdToken.extend(sourceName), Kubernetes.extend(sourceName), Vault.extend(sourceName)],
  { error: 'type must be one of dummy, idtoken, kubernetes, vault' },
);
export type VarSource = z.infer<typeof VarSource>;

/** Concourse's team: the first segment of every lookup path (CAUSEWAY_CREDS_TEAM). */
export const Team = z.string().regex(/^[A-Za-z0-9_-]+$/, 'a team name is letters, digits, _ and -');
export const DEFAULT_TEAM = 'main';

/** The text that replaces a credential's value in logs and errors, as Concourse writes it. */
export const REDACTED = '((redacted))';

/** A ref in a var source's config to another var source (Concourse: a var name with a `source:`), and where it is. */
export interface VarSourceDependency {
  /** the var source it reads */
  source: string;
  /** the text between the parentheses: `source:name.field` */
  ref: string;
  /** where in the config, relative to it */
  path: (string | number)[];
}

/** The refs to other var sources in a config's strings, in order (local vars and service addresses are none). */
export function varSourceDependencies(config: unknown): VarSourceDependency[] {
  const deps: VarSourceDependency[] = [];
  const walk = (v: unknown, path: (string | number)[]): void => {
    if (typeof v === 'string') {
      for (const ref of findVarRefs(v))
        if (ref.source !== undefined && ref.source !== '.' && ref.source !== SVC_SOURCE)
          deps.push({ source: ref.source, ref: ref.raw, path });
    } else if (Array.isArray(v)) v.forEach((item, i) => walk(item, [...path, i]));
    else if (isPlainObject(v)) for (const [k, item] of Object.entries(v)) walk(item, [...path, k]);
  };
  walk(config, []);
  return deps;
}

/** Why a var source cannot be resolved: one ref of its config, to a source that is not declared or that needs it back. */
export interface DependencyProblem<T> {
  source: T;
  dependency: VarSourceDependency;
  /** the sources around the cycle, from `source` back to it (`[a, a]` when it uses itself); absent: an undeclared source */
  cycle?: string[];
}

/**
 * Concourse's VarSourceConfigs.OrderByDependency (atc/config.go): each source after the sources
 * its config's ((source:var)) refs read, the file's order kept where nothing is needed. Unlike
 * Concourse's one pass over the waiting sources per source placed, which refuses `[a (uses b),
 * b (uses c), c]`, waiting sources are placed until none more can be; what is left is in a
 * cycle, or needs an undeclared source or one in a cycle, and `problems` says which ref of it.
 */
export function orderByDependency<T extends { name: string; config: unknown }>(
  sources: readonly T[],
): { ordered: T[]; problems: DependencyProblem<T>[] } {
  const deps = new Map(sources.map((s) => [s, varSourceDependencies(s.config)]));
  const ordered: T[] = [];
  const placed = new Set<string>();
  let waiting: T[] = [];
  const ready = (s: T) => deps.get(s)!.every((d) => placed.has(d.source));
  const place = (s: T) => {
    ordered.push(s);
    placed.add(s.name);
  };
  for (const source of sources) {
    if (!ready(source)) {
      waiting.push(source);
      continue;
    }
    place(source);
    for (let more = true; more;) {
      more = false;
      const left: T[] = [];
      for (const w of waiting)
        if (ready(w)) {
          place(w);
          more = true;
        } else left.push(w);
      waiting = left;
    }
  }
  const declared = new Set(sources.map((s) => s.name));
  const byName = new Map(sources.map((s) => [s.name, s]));
  const unplaced = new Set(waiting.map((s) => s.name));
  // The shortest way from `from` back to `to` through sources not placed, by the refs of their configs.
  const pathBack = (from: string, to: string): string[] | undefined => {
    const previous = new Map<string, string>([[from, '']]);
    const queue = [from];
    while (queue.length > 0) {
      const at = queue.shift()!;
      if (at === to) {
        const way = [at];
        for (let p = previous.get(at)!; p !== ''; p = previous.get(p)!) way.unshift(p);
        return way;
      }
      for (const d of deps.get(byName.get(at)!)!)
        if (unplaced.has(d.source) && !previous.has(d.source)) {
          previous.set(d.source, at);
          queue.push(d.source);
        }
    }
    return undefined;
  };
  const problems: DependencyProblem<T>[] = [];
  for (const source of waiting)
    for (const dependency of deps.get(source)!) {
      if (!declared.has(dependency.source)) problems.push({ source, dependency });
      else if (unplaced.has(dependency.source)) {
        const back = pathBack(dependency.source, source.name);
        if (back) problems.push({ source, dependency, cycle: [source.name, ...back] });
      }
    }
  return { ordered, problems };
}

/** What a DependencyProblem means to the user, and how to fix it. */
export function dependencyMessage(problem: DependencyProblem<{ name: string }>, declared: readonly string[]): string {
  const { source, dependency, cycle } = problem;
  if (!cycle)
    return `var source \`${source.name}\` uses \`((${dependency.ref}))\`, but no var source is named \`${dependency.source}\` (var_sources declared: ${declared.join(', ')})`;
  if (cycle.length === 2)
    return `var source \`${source.name}\` uses its own var \`((${dependency.ref}))\`: a var source's config may use only the vars of other var sources, -v/-l, or the workers' credential manager`;
  return (
    `var source \`${source.name}\` uses \`((${dependency.ref}))\`, but \`${dependency.source}\` needs \`${source.name}\` first: ` +
    `${cycle.join(' -> ')} (could not resolve inter-dependent var sources); take one of these values from another var source, -v/-l or the workers' credential manager`
  );
}
