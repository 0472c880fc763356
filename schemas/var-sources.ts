// Credential managers for ((vars)), as Concourse's var_sources and its cluster-wide manager:
// the config a plan's `var_sources:` entry or a worker's CAUSEWAY_CREDS holds. Values are
// looked up inside activities (activities/creds/), never in the workflow.
import { z } from 'zod';
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
