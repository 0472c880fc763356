// A Concourse task config: the contents of a task file or a task step's `config:`.
import { z } from 'zod';
import { checkTaskConfig } from './checks';
import type { ContainerLimits, TaskConfig } from './compiled';
import { Source, type Path } from './errors';
import { isPlainObject } from './interpolate';
import { parseMemory } from './units';
import { envMap, validate } from './validate';
import { interpolateDeferring } from './vars';

const memory = z.union([z.number(), z.string()]).transform((v, ctx) => {
  try {
    return parseMemory(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

const cpu = z.preprocess(
  (v) => (typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v),
  z.number().int().min(0, 'cpu must be a whole number of CPU shares >= 0'),
);

export const ContainerLimitsSchema = z.strictObject({ cpu: cpu.optional(), memory: memory.optional() });

const name = z.string().min(1, 'a name must not be empty');

function uniqueNames(kind: string) {
  return (items: { name: string }[], ctx: z.RefinementCtx) => {
    const seen = new Set<string>();
    items.forEach((item, i) => {
      if (seen.has(item.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate ${kind} name \`${item.name}\`` });
      seen.add(item.name);
    });
  };
}

export const TaskConfigSchema = z.strictObject({
  platform: z.string().optional(),
  image_resource: z
    .strictObject({
      type: z.string().min(1),
      source: z.record(z.string(), z.unknown()),
      params: z.record(z.string(), z.unknown()).optional(),
      version: z.record(z.string(), z.string()).optional(),
    })
    .optional(),
  rootfs_uri: z.string().optional(),
  inputs: z
    .array(z.strictObject({ name, path: z.string().optional(), optional: z.boolean().optional() }))
    .superRefine(uniqueNames('input'))
    .default([]),
  outputs: z
    .array(z.strictObject({ name, path: z.string().optional() }))
    .superRefine(uniqueNames('output'))
    .default([]),
  caches: z.array(z.strictObject({ path: z.string().min(1) })).default([]),
  params: envMap.default({}),
  run: z.strictObject({
    path: z.string().min(1, '`run.path` must not be empty'),
    args: z.array(z.union([z.string(), z.number(), z.boolean()], { error: 'an argument must be a string' }).transform(String)).default([]),
    dir: z.string().optional(),
    user: z.string().optional(),
  }),
  container_limits: ContainerLimitsSchema.optional(),
});

/** Drops keys a user left unset, so compiled plans carry no `undefined` fields. */
export function compact<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

export function toContainerLimits(l: z.output<typeof ContainerLimitsSchema>): ContainerLimits {
  return compact({ cpu: l.cpu, memory: l.memory });
}

/** Validates a task config found at `path` in `src`; issues go to `src`. */
export function compileTaskConfig(src: Source, value: unknown, path: Path): TaskConfig | undefined {
  if (!isPlainObject(value)) {
    src.add(path, 'a task config must be a map with at least `run: {path: ...}`');
    return undefined;
  }
  const c = validate(src, TaskConfigSchema, value, path, 'task config');
  if (!c) return undefined;
  checkTaskConfig(src, c, path);
  return compact({
    platform: c.platform,
    image_resource: c.image_resource && compact(c.image_resource),
    rootfs_uri: c.rootfs_uri,
    inputs: c.inputs.map((i) => compact(i)),
    outputs: c.outputs.map((o) => compact(o)),
    caches: c.caches,
    params: c.params,
    run: compact(c.run),
    container_limits: c.container_limits && toContainerLimits(c.container_limits),
  });
}

/**
 * Parses a task file (for a task step's `file:` at run time, and `causeway
 * execute -c`), interpolating ((vars)) from `vars`; with `credentials`, refs to
 * those var sources (and, with `deferUnsourced`, other undefined ones) stay as text
 * for the task's credential resolution. Throws PlanError.
 */
export function parseTaskConfig(opts: {
  text: string;
  file: string;
  vars?: Record<string, unknown>;
  credentials?: { varSources: ReadonlySet<string>; deferUnsourced: boolean };
}): TaskConfig {
  const src = new Source(opts.file, opts.text);
  src.check();
  const value = interpolateDeferring(src, src.value, [], { vars: opts.vars ?? {}, configRoot: true, ...opts.credentials }).value;
  const config = compileTaskConfig(src, value, []);
  src.check();
  return config as TaskConfig;
}
