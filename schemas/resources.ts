// `resources:` and `resource_types:` of a pipeline, and the `get`/`put` steps that use them.
// Resources are compiled when a step of the chosen job names them, so another job's
// resources need not have their vars set.
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { GetStep, PutStep, ResourceRef, ResourceTypeRef } from './compiled';
import type { Path, Source } from './errors';
import { isPlainObject } from './interpolate';
import { nearest } from './units';
import { bool, validate } from './validate';
import { interpolateDeferring, interpolateStatic, type DeferredVar } from './vars';

/** Which credential refs a pipeline file may leave for the worker (schemas/vars.ts). */
export interface ResourceVarOptions {
  vars: Record<string, unknown>;
  varSources?: ReadonlySet<string>;
  deferUnsourced?: boolean;
}

/** Resource types shipped with Causeway as host executables under resources/<name>/. */
export const BASE_RESOURCE_TYPES = ['git', 'time', 'registry-image', 'mock'] as const;

/** A resource_types entry of this type is a local directory of check/in/out executables (host runtime). */
export const DIRECTORY_TYPE = 'directory';

// Keys Concourse accepts that mean nothing to a one-off build: accepted so pipelines run unchanged.
const ignored = z.unknown().optional();
const source = z.record(z.string(), z.unknown());
const version = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]).transform(String));

const ResourceSchema = z.strictObject({
  name: z.string().min(1, 'a resource needs a name'),
  type: z.string().min(1, 'a resource needs a type'),
  source: source.optional(),
  // null is no pin, as Concourse's JSON null (testflight sets `-y pinned_resource_version=null`)
  version: version.nullish(),
  params: ignored,
  check_every: ignored,
  check_timeout: ignored,
  icon: ignored,
  tags: ignored,
  public: ignored,
  webhook_token: ignored,
  old_name: ignored,
  expose_build_created_by: ignored,
});

const ResourceTypeSchema = z.strictObject({
  name: z.string().min(1, 'a resource type needs a name'),
  type: z.string().min(1, 'a resource type needs a type'),
  source: source.optional(),
  privileged: bool.optional(),
  params: ignored,
  check_every: ignored,
  // read by compilePipeline: the check_timeout of resources of this type that set none
  check_timeout: ignored,
  tags: ignored,
  // merged under the source of each resource of this type, as Concourse's Source.Merge
  defaults: source.optional(),
  unique_version_history: ignored,
});

const DirectorySourceSchema = z.strictObject({ path: z.string().min(1, 'a directory resource type needs source.path') });

export const GetFields = {
  get: z.string().min(1, 'a get step needs a name'),
  resource: z.string().min(1).optional(),
  // As Concourse's VersionConfig: `every`, a version map, or any other string (and null) for latest.
  version: z
    .union([z.literal('every'), z.string().transform(() => 'latest' as const), version], {
      error: '`version` must be latest, every, or a version map like {ref: abc123}',
    })
    .nullish(),
  passed: z.array(z.string()).optional(),
  trigger: bool.optional(),
  params: z.record(z.string(), z.unknown()).optional(),
};

export const PutFields = {
  put: z.string().min(1, 'a put step needs a name'),
  resource: z.string().min(1).optional(),
  inputs: z
    .union([z.literal('all'), z.literal('detect'), z.array(z.string())], {
      error: '`inputs` must be all, detect, or a list of artifact names',
    })
    .optional(),
  params: z.record(z.string(), z.unknown()).optional(),
  get_params: z.record(z.string(), z.unknown()).optional(),
  no_get: bool.optional(),
};

/** Finds resources/ of this Causeway installation: from dist/schemas or schemas/ upwards. */
export function baseTypesDir(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'resources');
    if (fs.existsSync(path.join(candidate, 'time', 'check'))) return candidate;
    if (path.dirname(dir) === dir) throw new Error(`cannot find Causeway's resources/ directory above ${__dirname}`);
  }
}

/** The resources of one pipeline file, compiled on demand. */
export class Resources {
  private readonly compiled = new Map<string, ResourceRef | undefined>();

  private readonly vars: Record<string, unknown>;

  constructor(
    private readonly src: Source,
    private readonly root: Record<string, unknown>,
    private readonly opts: ResourceVarOptions,
  ) {
    this.vars = opts.vars;
  }

  /** The credential refs of every resource compiled so far (a job's: those its steps use). */
  deferred(): DeferredVar[] {
    const all = [...this.compiled.values()].flatMap((r) => r?.deferredVars ?? []);
    return [...new Map(all.map((d) => [d.ref, d])).values()];
  }

  /**
   * An entry with static vars filled in everywhere but its `source`, where credential refs
   * stay as text (Concourse resolves a source when it checks or runs the step).
   */
  private interpolateEntry(
    entry: unknown,
    where: Path,
    deferred: readonly ('source' | 'defaults')[],
  ): { value: unknown; deferred: DeferredVar[] } {
    if (!isPlainObject(entry)) return { value: interpolateStatic(this.src, entry, where, this.vars), deferred: [] };
    const rest = Object.fromEntries(Object.entries(entry).filter(([k]) => !(deferred as string[]).includes(k)));
    const out = interpolateStatic(this.src, rest, where, this.vars) as Record<string, unknown>;
    const refs: DeferredVar[] = [];
    for (const key of deferred) {
      if (!(key in entry)) continue;
      const r = interpolateDeferring(this.src, entry[key], [...where, key], { ...this.opts, deferrableRoot: true });
      out[key] = r.value;
      refs.push(...r.deferred);
    }
    return { value: out, deferred: refs };
  }

  /** The resource `name`, or undefined (and an error at `at`) when there is none or it is invalid. */
  resource(name: string, at: Path): ResourceRef | undefined {
    if (this.compiled.has(name)) return this.compiled.get(name);
    const list = Array.isArray(this.root.resources) ? this.root.resources : [];
    const index = list.findIndex((r) => isPlainObject(r) && r.name === name);
    if (index < 0) {
      const names = list.flatMap((r) => (isPlainObject(r) && typeof r.name === 'string' ? [r.name] : []));
      const hint = nearest(name, names);
      this.src.add(
        at,
        `no resource \`${name}\` in this file's \`resources:\`${hint ? `; did you mean \`${hint}\`?` : names.length ? ` (resources: ${names.join(', ')})` : ''}`,
      );
      return undefined;
    }
    const where: Path = ['resources', index];
    const entry = this.interpolateEntry(list[index], where, ['source']);
    const raw = validate(this.src, ResourceSchema, entry.value, where, 'resource');
    const type = raw && this.type(raw.type);
    const defaults = raw && type ? this.typeDefaults.get(raw.type) : undefined;
    const deferred = [
      ...entry.deferred,
      ...(type?.kind === 'image' ? (this.typeDeferred.get(type.name) ?? []) : []),
      ...(defaults?.deferred ?? []),
    ];
    const ref: ResourceRef | undefined =
      raw && type
        ? {
            name,
            type,
            source: { ...defaults?.value, ...raw.source },
            ...(deferred.length > 0 ? { deferredVars: deferred } : {}),
          }
        : undefined;
    this.compiled.set(name, ref);
    if (raw?.version) this.pins.set(name, raw.version);
    return ref;
  }

  /** Each compiled resource's `version:` with its ((vars)) filled in (testflight pins by `-y`). */
  private readonly pins = new Map<string, Record<string, string>>();

  /** A resource's pinned `version:` in the pipeline, if any (once `resource(name)` compiled it). */
  pinned(name: string): Record<string, string> | undefined {
    return this.pins.get(name);
  }

  /** credential refs of each image resource type's source */
  private readonly typeDeferred = new Map<string, DeferredVar[]>();
  /** each resource type's `defaults`, with their credential refs */
  private readonly typeDefaults = new Map<string, { value: Record<string, unknown>; deferred: DeferredVar[] }>();

  private type(name: string): ResourceTypeRef | undefined {
    const list = Array.isArray(this.root.resource_types) ? this.root.resource_types : [];
    const index = list.findIndex((t) => isPlainObject(t) && t.name === name);
    if (index >= 0) {
      const where: Path = ['resource_types', index];
      const rawType = list[index] as Record<string, unknown>;
      // A directory type's path is read here, when the pipeline is set: it must be static.
      // Its `defaults` become part of other resources' sources: refs stay, and are theirs.
      const { defaults: rawDefaults, ...rest } = rawType;
      const defaults = this.interpolateEntry({ defaults: rawDefaults }, where, ['defaults']);
      const entry = this.interpolateEntry(rest, where, rawType.type !== DIRECTORY_TYPE ? ['source'] : []);
      const t = validate(
        this.src,
        ResourceTypeSchema,
        { ...(entry.value as object), ...(defaults.value as object) },
        where,
        'resource type',
      );
      if (!t) return undefined;
      if (t.defaults) this.typeDefaults.set(name, { value: t.defaults, deferred: defaults.deferred });
      if (mirrorsMock(t.type, t.source, rawType.params))
        return { kind: 'host', name: 'mock', dir: path.join(baseTypesDir(), 'mock'), base: true };
      if (t.type !== DIRECTORY_TYPE) {
        if (entry.deferred.length > 0) this.typeDeferred.set(name, entry.deferred);
        return { kind: 'image', name, type: t.type, source: t.source ?? {}, ...(t.privileged ? { privileged: true } : {}) };
      }
      const dir = validate(this.src, DirectorySourceSchema, t.source ?? {}, [...where, 'source'], 'source of a directory resource type');
      if (!dir) return undefined;
      const abs = path.resolve(path.dirname(path.resolve(this.src.file)), dir.path);
      const missing = ['check', 'in', 'out'].filter((exe) => !isExecutable(path.join(abs, exe)));
      if (missing.length > 0) {
        this.src.add(
          [...where, 'source', 'path'],
          `resource type \`${name}\`: ${abs} lacks executable ${missing.join(', ')} (a directory type needs check, in and out)`,
        );
        return undefined;
      }
      return { kind: 'host', name, dir: abs };
    }
    if ((BASE_RESOURCE_TYPES as readonly string[]).includes(name))
      return { kind: 'host', name, dir: path.join(baseTypesDir(), name), base: true };
    // Concourse accepts any type name (workers bring base types: testflight's mock, the docs'
    // gitv2), so a step that uses it errors when it runs, naming the types that exist.
    return { kind: 'unknown', name };
  }
}

/**
 * A type whose image is mock's own: `type: mock` fetched with `mirror_self` (in its source, or
 * `mirror_self_via_params` in its params), as testflight's custom types are. mock-resource's
 * `in` then copies its own root filesystem, so the type's check, in and out are mock's: the
 * base type runs them (on the host, or in its image on kubernetes). Its MIRRORED_VERSION (the
 * initial version of a mirrored mock) is not set: the resources' own `initial_version` is.
 */
function mirrorsMock(type: string, source: Record<string, unknown> | undefined, params: unknown): boolean {
  return type === 'mock' && (source?.mirror_self === true || (isPlainObject(params) && params.mirror_self_via_params === true));
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

type GetFieldsOut = z.output<z.ZodObject<typeof GetFields>>;
type PutFieldsOut = z.output<z.ZodObject<typeof PutFields>>;

/** The kind-specific part of a compiled get step. */
export function getBody(
  s: GetFieldsOut,
  resource: ResourceRef,
  pinned: Record<string, string> | undefined,
): Omit<GetStep, keyof import('./compiled').StepCommon> {
  return {
    kind: 'get',
    name: s.get,
    resource,
    version: s.version ?? pinned ?? 'latest',
    params: s.params ?? {},
    trigger: s.trigger ?? false,
    passed: s.passed ?? [],
  };
}

/** The kind-specific part of a compiled put step. */
export function putBody(s: PutFieldsOut, resource: ResourceRef): Omit<PutStep, keyof import('./compiled').StepCommon> {
  return {
    kind: 'put',
    name: s.put,
    resource,
    // Concourse's put step detects its inputs when none are given (atc/exec/put_step.go).
    inputs: s.inputs ?? 'detect',
    params: s.params ?? {},
    getParams: s.get_params ?? {},
    noGet: s.no_get ?? false,
  };
}
