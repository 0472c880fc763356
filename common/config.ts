import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';

// Every environment variable Causeway reads, validated once.
const EnvSchema = z.object({
  CAUSEWAY_HOME: z.string().min(1).optional(),
  CAUSEWAY_CACHE: z.string().min(1).optional(),
  TEMPORAL_ADDRESS: z.string().min(1).optional(),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  NATS_URL: z.string().min(1).optional(),
  /** the Temporal UI for builds links, when TEMPORAL_ADDRESS points at a cluster */
  CAUSEWAY_UI_URL: z.url().optional(),
  CAUSEWAY_TASK_QUEUE: z.string().min(1).default('causeway'),
  CAUSEWAY_WORKER_NAME: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and - only (it becomes part of a task queue name)')
    .optional(),
  CAUSEWAY_WORKER_TAGS: z.string().optional(),
  // a kubernetes worker's images of the base resource types (activities/step/base-type-image.ts)
  CAUSEWAY_RESOURCE_IMAGES: z.string().optional(),
  CAUSEWAY_LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /** Go duration: how long a closed build's artifacts stay for `causeway retry` */
  CAUSEWAY_ARTIFACT_RETENTION: z.string().default('24h'),
  /** Go duration: how often a worker looks for leftovers of closed builds */
  CAUSEWAY_RECONCILE_INTERVAL: z.string().default('1m'),
  /** a payload codec keys file (see common/codec.ts); default CAUSEWAY_HOME/codec-keys.json when present */
  CAUSEWAY_CODEC_KEYS: z.string().min(1).optional(),
  /** the same keys inline as JSON, for a worker whose keys come from a Kubernetes Secret */
  CAUSEWAY_CODEC_KEY: z.string().min(1).optional(),
  /** the worker's cluster-wide credential manager, YAML or JSON: {type: dummy|kubernetes|vault, config: {...}} */
  CAUSEWAY_CREDS: z.string().min(1).optional(),
  /** the same in a file (0600: it may hold a Vault token) */
  CAUSEWAY_CREDS_FILE: z.string().min(1).optional(),
  /** Concourse's team: the first segment of credential lookup paths */
  CAUSEWAY_CREDS_TEAM: z.string().min(1).optional(),
  /** the issuer URL of idtoken var sources' tokens (the `iss` claim; verifiers fetch its /.well-known/openid-configuration) */
  CAUSEWAY_IDTOKEN_ISSUER: z.string().min(1).optional(),
  /** the idtoken signing keys file (0600, made when missing), the same for every worker; default CAUSEWAY_HOME/idtoken-keys.json */
  CAUSEWAY_IDTOKEN_KEYS: z.string().min(1).optional(),
  /** `false` shows credentials in step logs (Concourse's --disable-redact-secrets); only to debug a manager */
  CAUSEWAY_REDACT_SECRETS: z.enum(['true', 'false']).default('true'),
  CAUSEWAY_LOG_MAX_AGE: z
    .string()
    .regex(/^\d+$/, 'a number of seconds')
    .default(String(7 * 24 * 3600)),
});

export type Env = z.infer<typeof EnvSchema>;

export function readEnv(env: NodeJS.ProcessEnv = process.env): Env {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n');
    throw new Error(`invalid environment:\n${problems}`);
  }
  return parsed.data;
}

/** A root worker runs each build under a uid of its own, which must traverse every directory
 * above the home: root's own home (/root, 0700) is not traversable, /var/lib is. */
export const ROOT_CAUSEWAY_HOME = '/var/lib/causeway';

/** Where builds, the dev stack's data and its state file live. */
export function causewayHome(env: Env = readEnv()): string {
  if (env.CAUSEWAY_HOME) return env.CAUSEWAY_HOME;
  return process.getuid?.() === 0 ? ROOT_CAUSEWAY_HOME : path.join(os.homedir(), '.causeway');
}

/** Where provisioned binaries are cached by version. */
export function causewayCache(env: Env = readEnv()): string {
  return env.CAUSEWAY_CACHE ?? path.join(os.homedir(), '.cache', 'causeway');
}
