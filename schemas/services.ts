// `services:` on a step: each entry's shape, its config (a task config's shape plus
// ports and a startup probe), and the compile-time checks of ((.svc:NAME.field)) refs.
import { z } from 'zod';
import type { ServiceConfig, ServiceSpec } from './compiled';
import { Source, type Path } from './errors';
import { findVarRefs, isPlainObject, SVC_SOURCE, type VarRef } from './interpolate';
import { compact, ContainerLimitsSchema, TaskConfigSchema, toContainerLimits } from './task-config';
import { parseDuration } from './units';
import { bool, envMap, validate } from './validate';
import { interpolateDeferring } from './vars';

export const DEFAULT_PORT = 'default';
export const DEFAULT_GRACE_MS = 10_000;
// Kubernetes' startup probe allows failureThreshold × periodSeconds = 3 × 10 s before giving
// up; we keep that 30 s budget but probe every second, because a CI step waits on it.
export const PROBE_DEFAULTS = { failureThreshold: 30, periodSeconds: 1, timeoutSeconds: 1 } as const;

// Service names become env var prefixes (DB_SERVICE_HOST) and NATS subject tokens.
const serviceName = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_-]*$/, 'a service name starts with a letter and has only letters, digits, `_` and `-` (it names env vars)');
const portName = z.string().regex(/^[A-Za-z][A-Za-z0-9_-]*$/, 'a port name starts with a letter and has only letters, digits, `_` and `-`');

const seconds = (what: string) =>
  z.preprocess(
    (v) => (typeof v === 'string' && v.trim() !== '' ? Number(v) : v),
    z.number().positive(`${what} must be a number of seconds > 0`),
  );

const ServiceConfigSchema = z.strictObject({
  platform: TaskConfigSchema.shape.platform,
  image_resource: TaskConfigSchema.shape.image_resource,
  rootfs_uri: TaskConfigSchema.shape.rootfs_uri,
  inputs: TaskConfigSchema.shape.inputs,
  params: TaskConfigSchema.shape.params,
  container_limits: ContainerLimitsSchema.optional(),
  // Optional in the shape so its absence gets the runtime's own message.
  run: TaskConfigSchema.shape.run.optional(),
  ports: z
    .array(
      // A bare number is shorthand for an unnamed port.
      z.preprocess(
        (v) => (typeof v === 'number' ? { number: v } : v),
        z.strictObject({
          name: portName.optional(),
          number: z.preprocess(
            (v) => (typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v),
            z.number().int().min(1, 'a port is a number in 1..65535').max(65535, 'a port is a number in 1..65535'),
          ),
        }),
      ),
    )
    .default([])
    .superRefine((ports, ctx) => {
      const seen = new Set<string>();
      ports.forEach((p, i) => {
        if (p.name === undefined && ports.length > 1) {
          ctx.addIssue({
            code: 'custom',
            path: [i],
            message: `name every port of a service that lists ${ports.length}; only a single port may omit it (it is \`${DEFAULT_PORT}\`)`,
          });
        }
        const name = p.name ?? DEFAULT_PORT;
        if (seen.has(name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate port name \`${name}\`` });
        seen.add(name);
      });
    }),
  startup_probe: z
    .strictObject({
      run: z.strictObject({
        path: z.string().min(1, '`run.path` must not be empty'),
        args: TaskConfigSchema.shape.run.shape.args,
      }),
      failure_threshold: z
        .preprocess((v) => (typeof v === 'string' ? Number(v) : v), z.number().int().min(1, 'failure_threshold must be >= 1'))
        .optional(),
      period_seconds: seconds('period_seconds').optional(),
      timeout_seconds: seconds('timeout_seconds').optional(),
    })
    .optional(),
});

const ServiceEntrySchema = z.strictObject({
  name: serviceName,
  config: z.unknown().optional(),
  file: z.string().min(1).optional(),
  image: z.string().min(1).optional(),
  params: envMap.optional(),
  input_mapping: z.record(z.string(), z.string()).optional(),
  // As a task step's: what the service's container may do and use (the containerd runtime).
  privileged: bool.optional(),
  container_limits: ContainerLimitsSchema.optional(),
  grace_period: z
    .string()
    .transform((s, ctx) => {
      try {
        return parseDuration(s);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
        return z.NEVER;
      }
    })
    .optional(),
});

/** Validates a service config found at `path` in `src`; issues go to `src`. */
export function compileServiceConfig(src: Source, value: unknown, path: Path, service: string): ServiceConfig | undefined {
  if (!isPlainObject(value)) {
    src.add(path, 'a service config must be a map with at least `run: {path: ...}` and `ports`');
    return undefined;
  }
  const c = validate(src, ServiceConfigSchema, value, path, 'service config');
  if (!c) return undefined;
  if (!c.run) {
    src.add(path, `service \`${service}\` needs \`run\`: the local runtime runs a service as a process on the worker`);
    return undefined;
  }
  const probe = c.startup_probe;
  return compact({
    image_resource: c.image_resource && compact(c.image_resource),
    inputs: c.inputs.map((i) => compact(i)),
    params: c.params,
    container_limits: c.container_limits && toContainerLimits(c.container_limits),
    run: compact(c.run),
    ports: c.ports.map((p) => ({ name: p.name ?? DEFAULT_PORT, number: p.number })),
    startup_probe: probe && {
      run: probe.run,
      failureThreshold: probe.failure_threshold ?? PROBE_DEFAULTS.failureThreshold,
      periodSeconds: probe.period_seconds ?? PROBE_DEFAULTS.periodSeconds,
      timeoutSeconds: probe.timeout_seconds ?? PROBE_DEFAULTS.timeoutSeconds,
    },
  });
}

/** Validates a step's `services:` list; issues go to `src`. */
export function compileServices(src: Source, value: unknown, path: Path): ServiceSpec[] | undefined {
  if (!Array.isArray(value)) {
    src.add(path, '`services` must be a list of {name, config} or {name, file}');
    return undefined;
  }
  const seen = new Set<string>();
  let ok = true;
  const specs = value.map((raw, i): ServiceSpec | undefined => {
    const at = [...path, i];
    const s = validate(src, ServiceEntrySchema, raw, at, 'service');
    if (!s) return undefined;
    if (seen.has(s.name)) {
      src.add([...at, 'name'], `duplicate service name \`${s.name}\` in this step's services`);
      return undefined;
    }
    seen.add(s.name);
    if (s.config === undefined && s.file === undefined) {
      src.add(at, `service \`${s.name}\` needs \`config\` or \`file\``);
      return undefined;
    }
    const config = s.config === undefined ? undefined : compileServiceConfig(src, s.config, [...at, 'config'], s.name);
    if (s.config !== undefined && !config) return undefined;
    return compact({
      name: s.name,
      config,
      file: s.file,
      image: s.image,
      params: s.params ?? {},
      inputMapping: s.input_mapping ?? {},
      privileged: s.privileged,
      containerLimits: s.container_limits && toContainerLimits(s.container_limits),
      gracePeriodMs: s.grace_period ?? DEFAULT_GRACE_MS,
    });
  });
  for (const s of specs) if (!s) ok = false;
  return ok ? (specs as ServiceSpec[]) : undefined;
}

/**
 * Parses a service config file (a service's `file:`, loaded at run time); with `credentials`,
 * refs to those var sources (and, with `deferUnsourced`, unsourced ones) in its params, run and
 * image_resource stay as text for the service's credential resolution. Throws PlanError.
 */
export function parseServiceConfig(opts: {
  text: string;
  file: string;
  service: string;
  credentials?: { varSources: ReadonlySet<string>; deferUnsourced: boolean };
}): ServiceConfig {
  const src = new Source(opts.file, opts.text);
  src.check();
  const value = interpolateDeferring(src, src.value, [], { vars: {}, configRoot: true, ...opts.credentials }).value;
  const config = compileServiceConfig(src, value, [], opts.service);
  src.check();
  return config as ServiceConfig;
}

/** Services visible to a step: those of each enclosing step that has `services:`, outermost first. */
export interface ServiceScope {
  stepId: string;
  label: string;
  services: { name: string; ports?: string[] }[];
}

/** Why `ref` (a ((.svc:...)) ref) is wrong for the services in `scopes`, or undefined when it is fine. */
export function checkServiceRef(ref: VarRef, scopes: ServiceScope[]): string | undefined {
  const [name, field, sub, ...rest] = ref.path;
  const visible = scopes.flatMap((s) => s.services.map((svc) => ({ ...svc, scope: s })));
  const found = [...visible].reverse().find((v) => v.name === name);
  if (!found) {
    const where = scopes.map((s) => `${s.label} (${s.services.map((v) => v.name).join(', ')})`);
    return (
      `unknown service \`${name}\` in ((${ref.raw})): ` +
      (where.length > 0 ? `the steps in scope that define services are ${where.join('; ')}` : 'no step in scope defines services')
    );
  }
  const fields = 'address, host, port, addresses.PORT or ports.PORT';
  if (field === undefined) return `((${ref.raw})) needs a field after the service name: ${fields}`;
  if (['address', 'host', 'port'].includes(field) && sub === undefined) return undefined;
  if ((field === 'addresses' || field === 'ports') && sub !== undefined && rest.length === 0) {
    if (found.ports && !found.ports.includes(sub)) {
      return `service \`${name}\` has no port \`${sub}\` in ((${ref.raw})); its ports are ${found.ports.join(', ') || 'none'}`;
    }
    return undefined;
  }
  return `unknown field in ((${ref.raw})): after the service name comes ${fields}`;
}

/** Every ((.svc:...)) ref in the strings of `value`, with its path. */
export function serviceRefs(value: unknown, path: Path): { ref: VarRef; path: Path }[] {
  if (typeof value === 'string')
    return findVarRefs(value)
      .filter((r) => r.source === SVC_SOURCE)
      .map((ref) => ({ ref, path }));
  if (Array.isArray(value)) return value.flatMap((v, i) => serviceRefs(v, [...path, i]));
  if (isPlainObject(value)) return Object.entries(value).flatMap(([k, v]) => serviceRefs(v, [...path, k]));
  return [];
}
