// Credential refs resolved inside activities, never in the workflow: a build's var_sources and
// the worker's cluster-wide manager, looked up along Concourse's paths, every value found
// tracked for redaction from the step's logs and errors.
import { z } from 'zod';
import type { IdTokenIssuer } from '../../common/idtoken';
import { Redactor } from '../../common/redact';
import type { ResourceRef, VarSourceConfig } from '../../schemas/compiled';
import { pipelineNameOf } from '../../schemas/pipeline-api';
import { descend, findVarRefs, interpolate, isPlainObject, SVC_SOURCE, stringifyVar, type VarRef } from '../../schemas/interpolate';
import { type CredentialManagerConfig, dependencyMessage, orderByDependency, VarSource } from '../../schemas/var-sources';
import { StepErrored } from '../errors';
import { DummyStore } from './dummy';
import { IdTokenStore } from './idtoken';
import { KubernetesStore } from './kubernetes';
import type { SecretLookup, SecretStore } from './types';
import { VaultStore } from './vault';

export type { SecretStore } from './types';

/**
 * The name a build's refs are looked up under: its pipeline's name for a job build (`pipeline`
 * is the pipeline's key, and the instances of a pipeline share its credentials, as Concourse's),
 * else its plan's.
 */
export const lookupPipeline = (req: { pipeline?: string; plan: string }) =>
  req.pipeline !== undefined ? pipelineNameOf(req.pipeline) : req.plan;

/** What a worker brings to credential resolution. */
export interface WorkerCredentials {
  /** Concourse's team: the first segment of every lookup path */
  team: string;
  /** the cluster-wide manager, for refs without a source */
  cluster?: SecretStore;
  /** redact values from logs and errors (Concourse's default; off only to debug a manager) */
  redact: boolean;
  /** signs the tokens of idtoken var sources; absent: the worker refuses them, naming the flag */
  idtoken?: IdTokenIssuer;
}

export function storeFor(config: CredentialManagerConfig): SecretStore {
  switch (config.type) {
    case 'dummy':
      return new DummyStore(config.config.vars);
    case 'kubernetes':
      return new KubernetesStore(config.config);
    case 'vault':
      return new VaultStore(config.config);
  }
}

type Found = { found: true; value: unknown };

/** The refs of a var source's config the worker resolves before it makes the source: all but local vars and service addresses. */
function configRefs(config: unknown): VarRef[] {
  const refs: VarRef[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'string') refs.push(...findVarRefs(v).filter((r) => r.source !== '.' && r.source !== SVC_SOURCE));
    else if (Array.isArray(v)) v.forEach(walk);
    else if (isPlainObject(v))
      for (const [k, item] of Object.entries(v)) {
        walk(k);
        walk(item);
      }
  };
  walk(config);
  return refs;
}

/**
 * One activity's view of a build's credentials; values are looked up once per activity. A var
 * source whose config uses ((vars)) of other sources (or of the cluster-wide manager) is built
 * when a ref first needs it, as Concourse's pipeline.Variables: its config's refs looked up in
 * the sources before it (orderByDependency), then checked and the source made. What those
 * lookups find is tracked for redaction as any other value.
 */
export class CredentialResolver {
  readonly redactor = new Redactor();
  private readonly sources = new Map<string, SecretStore>();
  /** sources whose config holds refs, by name, and their store once a lookup needed it */
  private readonly unresolved = new Map<string, { raw: VarSourceConfig; store?: Promise<SecretStore> }>();
  private readonly looked = new Map<string, Promise<SecretLookup>>();
  /** every value found, whole, by source and name: what a runtime redacts from a service's log */
  private readonly secrets = new Map<string, unknown>();
  /** the refs looked up and found, by their text: a later activity looks them up again (recall) to redact their values */
  readonly found = new Set<string>();

  constructor(
    private readonly worker: WorkerCredentials,
    /** Concourse's pipeline: the build's plan name */
    private readonly pipeline: string,
    varSources: VarSourceConfig[] = [],
    /** the build's id: an idtoken source redacts every token the worker gave the build's steps (IdTokenIssuer.issued) */
    private readonly build?: string,
  ) {
    // The compiler refused these (compileVarSources); a hand-made build input may still hold them.
    const { ordered, problems } = orderByDependency(varSources);
    if (problems.length > 0) {
      const names = varSources.map((v) => v.name);
      throw new StepErrored(`var_sources: ${problems.map((p) => dependencyMessage(p, names)).join('; ')}`, 'BadVarSource');
    }
    for (const raw of ordered) {
      if (configRefs(raw.config).length > 0) this.unresolved.set(raw.name, { raw });
      else this.sources.set(raw.name, this.storeOf(raw, raw.config));
    }
  }

  /** A var source's store from its config, refs resolved; throws StepErrored when the config is bad. */
  private storeOf(raw: VarSourceConfig, config: unknown): SecretStore {
    // What compilePipeline added to an idtoken source (its job, instance vars) is no config of the user's.
    const parsed = VarSource.safeParse({ name: raw.name, type: raw.type, config });
    if (!parsed.success)
      throw new StepErrored(
        this.redactMessage(`var_sources: ${raw.name}: ${z.prettifyError(parsed.error).replace(/\n\s*/g, ' ')}`),
        'BadVarSource',
      );
    const source = parsed.data;
    const who = { team: this.worker.team, pipeline: this.pipeline, instanceVars: raw.instanceVars, job: raw.job ?? '' };
    return source.type === 'idtoken'
      ? new IdTokenStore(source.name, source.config, who, this.worker.idtoken, this.build)
      : storeFor(source);
  }

  /** A source whose config holds refs, built once: its refs looked up first (in the sources before it, or the cluster-wide manager). */
  private resolveSource(name: string): Promise<SecretStore> {
    const entry = this.unresolved.get(name)!;
    entry.store ??= (async () => {
      const refs = new Map(configRefs(entry.raw.config).map((r) => [r.raw, r]));
      const hits = new Map<string, SecretLookup>();
      await Promise.all([...refs.values()].map(async (ref) => hits.set(ref.raw, await this.lookup(ref))));
      const r = interpolate(entry.raw.config, (ref) => hits.get(ref.raw) ?? ({ found: true, value: `((${ref.raw}))` } as Found));
      if (r.problems.length > 0)
        throw new StepErrored(this.redactMessage(r.problems.map((p) => `var_sources: ${name}: ${p}`).join('\n')), 'InvalidKey');
      if (r.missing.length > 0) {
        const seen = [...new Map(r.missing.map((m) => [m.raw, m])).values()];
        throw new StepErrored(
          seen.map((m) => `var_sources: ${name}: its config's var \`${m.raw}\` is undefined: ${this.explain(m)}`).join('\n'),
          'UndefinedVar',
        );
      }
      const store = this.storeOf(entry.raw, r.value);
      this.sources.set(name, store);
      return store;
    })();
    return entry.store;
  }

  /** Refs this resolver answers: those of a var source, and unsourced ones when the worker has a manager. */
  handles(ref: VarRef): boolean {
    if (ref.source === '.' || ref.source === SVC_SOURCE) return false;
    return ref.source === undefined ? this.worker.cluster !== undefined : this.sources.has(ref.source) || this.unresolved.has(ref.source);
  }

  /** What a task file's parse leaves for this resolver (schemas/task-config.ts). */
  get deferring(): { varSources: ReadonlySet<string>; deferUnsourced: boolean } {
    return { varSources: new Set([...this.sources.keys(), ...this.unresolved.keys()]), deferUnsourced: this.worker.cluster !== undefined };
  }

  private async storeFor(ref: VarRef): Promise<SecretStore | undefined> {
    if (ref.source === undefined) return this.worker.cluster;
    return this.sources.get(ref.source) ?? (this.unresolved.has(ref.source) ? this.resolveSource(ref.source) : undefined);
  }

  /** Where a ref was looked for, for the message when it is found nowhere. */
  explain(ref: VarRef): string {
    const store = ref.source === undefined ? this.worker.cluster : this.sources.get(ref.source);
    if (!store) {
      if (ref.source === undefined) return 'not given with -v/-l, and this worker has no credential manager (CAUSEWAY_CREDS)';
      return this.unresolved.has(ref.source)
        ? `var source \`${ref.source}\` could not be made: its config's refs are not resolved`
        : `no var source named \`${ref.source}\``;
    }
    return `not found in ${store.describe} at ${store.lookupPaths(this.worker.team, this.pipeline, ref.path[0]).join(', ')}`;
  }

  async lookup(ref: VarRef): Promise<SecretLookup> {
    const [name, ...fields] = ref.path;
    const key = `${ref.source ?? ''}:${name}`;
    let pending = this.looked.get(key);
    if (!pending) {
      pending = this.storeFor(ref).then((store) => (store ? this.firstFound(store, name) : { found: false }));
      this.looked.set(key, pending);
    }
    const whole = await pending;
    if (!whole.found) return whole;
    const store = (await this.storeFor(ref))!;
    // As Concourse's tracker: the whole value is a secret, whichever field a step uses.
    const tracked = [whole.value, ...(store.earlier?.() ?? [])];
    if (this.worker.redact) tracked.forEach((v) => this.redactor.add(v));
    tracked.forEach((v, i) => this.secrets.set(i === 0 ? key : `${key}#${i}`, v));
    this.found.add(ref.raw);
    return descend(whole.value, fields);
  }

  /** Every value found so far as the texts a step may see (redaction on or off): see secretTexts. */
  secretTexts(): string[] {
    return secretTexts([...this.secrets.values()]);
  }

  /** The values found so far, to redact (empty when redaction is off). */
  get values(): unknown[] {
    return this.worker.redact ? [...this.secrets.values()] : [];
  }

  /** Looks up again refs an earlier activity found (`found`), so their values are redacted here too. */
  async recall(refs: readonly string[]): Promise<void> {
    await Promise.all(refs.map((raw) => this.lookup(parseRef(raw))));
  }

  private async firstFound(store: SecretStore, name: string): Promise<SecretLookup> {
    for (const path of store.lookupPaths(this.worker.team, this.pipeline, name)) {
      let hit: SecretLookup;
      try {
        hit = await store.get(path);
      } catch (err) {
        // A refusal (StepErrored) stays one: retrying would not change it.
        if (err instanceof StepErrored) throw new StepErrored(`looking up ((${name})): ${err.message}`, err.reason);
        throw new Error(`looking up ((${name})): ${(err as Error).message}`, { cause: err });
      }
      if (hit.found) return hit;
    }
    return { found: false };
  }

  /** Resolves every ref this resolver handles in `value`'s strings; other refs stay as text. Returns the refs found nowhere. */
  async interpolate<T>(value: T): Promise<{ value: T; missing: VarRef[] }> {
    const refs = new Map<string, VarRef>();
    const collect = (v: unknown): void => {
      if (typeof v === 'string') for (const ref of findVarRefs(v)) if (this.handles(ref)) refs.set(ref.raw, ref);
      if (Array.isArray(v)) v.forEach(collect);
      else if (isPlainObject(v))
        for (const [k, item] of Object.entries(v)) {
          collect(k);
          collect(item);
        }
    };
    collect(value);
    const hits = new Map<string, SecretLookup>();
    await Promise.all([...refs.values()].map(async (ref) => hits.set(ref.raw, await this.lookup(ref))));
    const r = interpolate(value, (ref) =>
      this.handles(ref) ? (hits.get(ref.raw) ?? { found: false }) : ({ found: true, value: `((${ref.raw}))` } as Found),
    );
    // Says what a credential is (a map, a number), never its value.
    if (r.problems.length > 0) throw new StepErrored(this.redactMessage(r.problems.join('\n')), 'InvalidKey');
    return { value: r.value as T, missing: r.missing };
  }

  /** Every ref of a build that the worker must resolve: throws StepErrored naming each one found nowhere, where the plan uses it. */
  async check(deferred: { ref: string; at: string }[]): Promise<void> {
    const problems: string[] = [];
    let reason: string | undefined = 'UndefinedVar';
    const failed = new Set<string>();
    for (const d of deferred) {
      const ref = parseRef(d.ref);
      try {
        if ((await this.lookup(ref)).found) continue;
      } catch (err) {
        // A var source that could not be made from its config's refs: said once, where the plan first uses it.
        if (!(err instanceof StepErrored) || ref.source === undefined || !this.unresolved.has(ref.source)) throw err;
        if (failed.has(ref.source)) continue;
        failed.add(ref.source);
        if (problems.length === 0) reason = err.reason;
        problems.push(`${d.at}: ${err.message}`);
        continue;
      }
      problems.push(`${d.at}: undefined var \`${d.ref}\`: ${this.explain(ref)}`);
    }
    if (problems.length > 0) throw new StepErrored(problems.join('\n'), reason);
  }

  /** An error message with every tracked value redacted. */
  redactMessage(message: string): string {
    return this.redactor.text(message);
  }
}

/**
 * A resource script's request (source, version, params) with its credential refs resolved
 * structurally, in the parsed value, before it becomes JSON text. A ref of the resource's
 * source found nowhere throws StepErrored naming the var, the resource and where the pipeline
 * file uses it; so does one of the step's params.
 */
export async function resolveResourceRequest<T>(
  creds: CredentialResolver,
  resource: Pick<ResourceRef, 'name' | 'deferredVars'>,
  request: T,
): Promise<T> {
  try {
    await creds.check(resource.deferredVars ?? []);
  } catch (err) {
    if (err instanceof StepErrored) throw new StepErrored(`resource ${resource.name}: ${err.message}`, err.reason);
    throw err;
  }
  const { value, missing } = await creds.interpolate(request);
  if (missing.length > 0) {
    const seen = [...new Map(missing.map((r) => [r.raw, r])).values()];
    throw new StepErrored(
      seen.map((r) => `resource ${resource.name}: undefined var \`${r.raw}\`: ${creds.explain(r)}`).join('\n'),
      'UndefinedVar',
    );
  }
  return value;
}

/** A secret value as the texts that show it: the whole (as a step's env gets it) and each string in it. */
export function secretTexts(values: readonly unknown[]): string[] {
  const texts = new Set<string>();
  const walk = (v: unknown): void => {
    if (typeof v === 'string') texts.add(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (isPlainObject(v)) Object.values(v).forEach(walk);
  };
  for (const value of values) {
    texts.add(stringifyVar(value));
    walk(value);
  }
  texts.delete('');
  return [...texts];
}

function parseRef(raw: string): VarRef {
  const [ref] = findVarRefs(`((${raw}))`);
  return ref;
}

/** A map whose values are env vars or args: a credential that is a map or a number becomes text, as Concourse encodes it. */
export function asStrings<T extends Record<string, unknown> | unknown[]>(v: T): T {
  return (Array.isArray(v) ? v.map(stringifyVar) : Object.fromEntries(Object.entries(v).map(([k, x]) => [k, stringifyVar(x)]))) as T;
}
