// A step's env vars whose values hold a secret (a resolved credential, a secret load_var) come
// from a Secret of the step's own through secretKeyRef: a pod spec is shown to whoever may get
// pods (`kubectl describe pod` prints it), a Secret only to who may get secrets. Pure functions.
import { createHash } from 'node:crypto';
import type { V1EnvVar, V1OwnerReference, V1Secret } from './client';

/** The values a step's env must not show in clear, and the Secret that holds the vars with them. */
export interface EnvSecret {
  name: string;
  values: readonly string[];
}

/** The Secret of a step's pod: the pod's name and a suffix (Secret names may be 253 long). */
export function envSecretName(pod: string): string {
  return `${pod}-env`;
}

/** A Secret data key for an env var: its name when the API allows it, else a hash of it. */
export function secretKey(name: string): string {
  return /^[-._a-zA-Z0-9]{1,200}$/.test(name) ? name : `env-${createHash('sha256').update(name).digest('hex').slice(0, 16)}`;
}

/** The vars whose values contain one of the secret values. */
export function secretVars(vars: Record<string, string>, values: readonly string[]): Record<string, string> {
  const secrets = values.filter((v) => v !== '');
  return Object.fromEntries(Object.entries(vars).filter(([, value]) => secrets.some((s) => value.includes(s))));
}

/** Env vars sorted by name; a var holding a secret is a secretKeyRef into `secret`. */
export function envVars(vars: Record<string, string>, secret?: EnvSecret): V1EnvVar[] {
  const hidden = secret ? secretVars(vars, secret.values) : {};
  return Object.keys(vars)
    .sort()
    .map((name) =>
      name in hidden && secret
        ? { name, valueFrom: { secretKeyRef: { name: secret.name, key: secretKey(name) } } }
        : { name, value: vars[name] },
    );
}

/** The Secret a pod's secretKeyRefs read, owned as the pod is; undefined when no var holds a secret. */
export function buildEnvSecret(o: {
  namespace: string;
  vars: Record<string, string>;
  secret: EnvSecret;
  owner: V1OwnerReference;
  labels: Record<string, string>;
}): V1Secret | undefined {
  const hidden = secretVars(o.vars, o.secret.values);
  if (Object.keys(hidden).length === 0) return undefined;
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: o.secret.name, namespace: o.namespace, labels: o.labels, ownerReferences: [o.owner] },
    type: 'Opaque',
    stringData: Object.fromEntries(Object.entries(hidden).map(([name, value]) => [secretKey(name), value])),
  };
}
