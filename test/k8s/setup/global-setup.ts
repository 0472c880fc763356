// Starts one real control plane (etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler, KWOK) for the whole "k8s" jest project. The first run on a machine builds
// it from the Go module proxy (scripts/k8s/provision.sh); later runs start it in seconds.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCluster } from '../cluster';

declare global {
  var __causewayK8sDir: string | undefined;
}

export default async function globalSetup(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-k8s-'));
  const started = Date.now();
  const log = (line: string) => process.stderr.write(`[k8s] ${line}\n`);
  const state = await startCluster({ dir, log });
  globalThis.__causewayK8sDir = dir;
  process.env.CAUSEWAY_TEST_K8S_DIR = dir;
  process.env.KUBECONFIG = state.kubeconfig;
  log(`control plane ${state.server} ready in ${Date.now() - started} ms ${JSON.stringify(state.timings)}; logs in ${dir}/logs`);
}
