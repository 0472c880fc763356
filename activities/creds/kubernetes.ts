// Concourse's `kubernetes` manager: Secret `<pipeline>.<name>`, then `<name>`, in namespace
// `<namespace_prefix><team>` (atc/creds/kubernetes/secrets.go).
import fs from 'node:fs';
import { k8s, type CoreV1Api, type KubeConfig } from '../runtime/kubernetes/client';
import { apiCode } from '../runtime/kubernetes/errors';
import { valueOf, type SecretLookup, type SecretStore } from './types';

export interface KubernetesStoreOptions {
  namespace_prefix: string;
  namespace?: string;
  kubeconfig?: string;
  context?: string;
  /** an already loaded KubeConfig (tests) instead of kubeconfig/context */
  kubeConfig?: KubeConfig;
}

export class KubernetesStore implements SecretStore {
  readonly describe: string;
  private readonly core: CoreV1Api;
  /** how many Secrets were read, for tests: one lookup path costs one GET */
  gets = 0;

  constructor(private readonly opts: KubernetesStoreOptions) {
    const { KubeConfig, CoreV1Api } = k8s();
    let kc = opts.kubeConfig;
    if (!kc) {
      kc = new KubeConfig();
      if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
      else if (process.env.KUBERNETES_SERVICE_HOST && fs.existsSync('/var/run/secrets/kubernetes.io/serviceaccount/token'))
        kc.loadFromCluster();
      else kc.loadFromDefault();
      if (opts.context) kc.setCurrentContext(opts.context);
    }
    this.core = kc.makeApiClient(CoreV1Api);
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
