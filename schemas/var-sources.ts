// Credential managers for ((vars)), as Concourse's var_sources and its cluster-wide manager:
// the config a plan's `var_sources:` entry or a worker's CAUSEWAY_CREDS holds. Values are
// looked up inside activities (activities/creds/), never in the workflow.
import { z } from 'zod';

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

const Dummy = z.strictObject({ type: z.literal('dummy'), config: DummyConfig.default({ vars: {} }) });
const Kubernetes = z.strictObject({ type: z.literal('kubernetes'), config: KubernetesConfig.default({ namespace_prefix: 'concourse-' }) });
const Vault = z.strictObject({ type: z.literal('vault'), config: VaultConfig });

export const CredentialManagerConfig = z.discriminatedUnion('type', [Dummy, Kubernetes, Vault], {
  error: 'type must be one of dummy, kubernetes, vault',
});
export type CredentialManagerConfig = z.infer<typeof CredentialManagerConfig>;

const sourceName = {
  name: z.string().regex(/^[A-Za-z0-9_-]+$/, 'a var source name is letters, digits, _ and - (the `name` of ((name:var)))'),
};
/** One entry of a plan's `var_sources:`, named for ((name:var)) refs. */
export const VarSource = z.discriminatedUnion('type', [Dummy.extend(sourceName), Kubernetes.extend(sourceName), Vault.extend(sourceName)], {
  error: 'type must be one of dummy, kubernetes, vault',
});
export type VarSource = z.infer<typeof VarSource>;

/** Concourse's team: the first segment of every lookup path (CAUSEWAY_CREDS_TEAM). */
export const Team = z.string().regex(/^[A-Za-z0-9_-]+$/, 'a team name is letters, digits, _ and -');
export const DEFAULT_TEAM = 'main';

/** The text that replaces a credential's value in logs and errors, as Concourse writes it. */
export const REDACTED = '((redacted))';
