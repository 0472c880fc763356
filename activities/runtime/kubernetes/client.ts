// @kubernetes/client-node 1.x is an ES module. This project compiles to CommonJS (module
// node16), and Node 20.19+ can require() an ES module that has no top-level await, which this
// one has not. TypeScript's node16 mode does not model that yet, so the types come in through
// an import type with resolution-mode "import" and the value through require(): one place,
// so every other file imports from here.
import fs from 'node:fs';
import type * as K8s from '@kubernetes/client-node' with { 'resolution-mode': 'import' };

export type { K8s };
export type V1Pod = K8s.V1Pod;
export type V1Container = K8s.V1Container;
export type V1ConfigMap = K8s.V1ConfigMap;
export type V1Secret = K8s.V1Secret;
export type V1EnvVar = K8s.V1EnvVar;
export type V1ResourceRequirements = K8s.V1ResourceRequirements;
export type V1ContainerStatus = K8s.V1ContainerStatus;
export type V1OwnerReference = K8s.V1OwnerReference;
export type KubeConfig = K8s.KubeConfig;
export type CoreV1Api = K8s.CoreV1Api;

let loaded: typeof K8s | undefined;

/**
 * The client library, loaded on first use (unit tests of the pure pod builder never load it).
 * Under jest, which cannot require() ES modules on Node 20, the "k8s" project compiles this
 * package and its ESM dependencies to CommonJS (see jest.config.js).
 */
export function k8s(): typeof K8s {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loaded ??= require('@kubernetes/client-node') as typeof K8s;
  return loaded;
}

/** Where a KubeConfig comes from: the runtime's and the credential manager's options alike. */
export interface KubeConfigSource {
  /** a kubeconfig file; else in-cluster credentials when in a pod, else the default loading rules */
  kubeconfig?: string;
  /** the kubeconfig context to use (default: its current-context) */
  context?: string;
  /** an already loaded KubeConfig (tests, embedding) instead of kubeconfig/context */
  kubeConfig?: KubeConfig;
}

const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** The KubeConfig given, else loaded from a file, in-cluster credentials, or the default rules. */
export function loadKubeConfig(opts: KubeConfigSource): KubeConfig {
  if (opts.kubeConfig) return opts.kubeConfig;
  const kc = new (k8s().KubeConfig)();
  if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
  else if (process.env.KUBERNETES_SERVICE_HOST && fs.existsSync(IN_CLUSTER_TOKEN)) kc.loadFromCluster();
  else kc.loadFromDefault();
  if (opts.context) kc.setCurrentContext(opts.context);
  return kc;
}
