// Concourse's `kubernetes` manager: Secret `<pipeline>.<name>`, then `<name>`, in namespace
// `<namespace_prefix><team>` (atc/creds/kubernetes/secrets.go).
import { k8s, loadKubeConfig, type CoreV1Api, type KubeConfigSource } from '../runtime/kubernetes/client';
import { apiCode } from '../runtime/kubernetes/errors';
import { valueOf, type SecretLookup, type SecretStore } from './types';

export interface KubernetesStoreOptions extends KubeConfigSource {
  namespace_prefix: string;
  namespace?: string;
}

export class KubernetesStore implements SecretStore {
  readonly describe: string;
  private readonly core: CoreV1Api;
  /** how many Secrets were read, for tests: one lookup path costs one GET */
  gets = 0;

  constructor(private readonly opts: KubernetesStoreOptions) {
    this.core = loadKubeConfig(opts).makeApiClient(k8s().CoreV1Api);
    this.describe = `kubernetes (namespace ${opts.namespace ?? `${opts.namespace_prefix}<team>`})`;
  }

  lookupPaths(team: string, pipeline: string, name: string): string[] {
    const ns = this.opts.namespace ?? `${this.opts.namespace_prefix}${team}`;
    return [`${ns}/${pipeline}.${name}`, `${ns}/${name}`];
  }

  async get(path: string): Promise<SecretLookup> {
    const [namespace, name, ...rest] = path.split('/');
    if (!namespace || !name || rest.length > 0)
      throw new Error(`unable to split kubernetes secret path into [namespace]/[secret]: ${path}`);
    this.gets++;
    try {
      const secret = await this.core.readNamespacedSecret({ name, namespace });
      const data = Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
      return { found: true, value: valueOf(data) };
    } catch (err) {
      if (apiCode(err) === 404) return { found: false };
      throw new Error(`kubernetes: cannot read Secret ${name} in namespace ${namespace}: ${(err as Error).message}`, { cause: err });
    }
  }
}
