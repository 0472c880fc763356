// Starts one control plane with a real node for the whole "k8s-node" jest project (root only):
// the first run on a machine builds kubelet, kube-proxy, CoreDNS and the images
// (scripts/k8s/provision.sh --node, scripts/images/build.sh); later runs reuse them.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startCluster } from '../../cluster';

export default async function globalSetup(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-k8s-node-'));
  const started = Date.now();
  const log = (line: string) => process.stderr.write(`[k8s-node] ${line}\n`);
  globalThis.__causewayK8sDir = dir;
  const state = await startCluster({ dir, log, node: 'real' });
  process.env.CAUSEWAY_TEST_K8S_DIR = dir;
  process.env.KUBECONFIG = state.kubeconfig;
  log(`control plane ${state.server} and node ${state.node?.name} ready in ${Date.now() - started} ms ${JSON.stringify(state.timings)}; logs in ${dir}/logs`);
}
