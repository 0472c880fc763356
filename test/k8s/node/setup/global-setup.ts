// The "k8s-node" jest project (root only) runs on what a user starts: `causeway dev up
// --runtime kubernetes` in a home of its own, on free ports: Temporal, NATS, a control plane
// with one real node (containerd, kubelet, kube-proxy, CoreDNS, a local registry with the
// images built offline) and a kubernetes worker in namespace `causeway`. The first run on a
// machine builds kubelet, kube-proxy, CoreDNS and the images; later runs reuse them.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../../../cli/dev/stack';

declare global {
  var __causewayDevHome: string | undefined;
}

export const BIN = path.resolve(__dirname, '../../../../bin/causeway');

export default async function globalSetup(): Promise<void> {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-k8s-node-'));
  globalThis.__causewayDevHome = home;
  const started = Date.now();
  const ports = ['--temporal-port', '--ui-port', '--nats-port', '--codec-port'];
  const args = ['dev', 'up', '--runtime', 'kubernetes'];
  for (const flag of ports) args.push(flag, String(await freePort()));
  execFileSync(BIN, args, { env: { ...process.env, CAUSEWAY_HOME: home }, stdio: ['ignore', process.stderr, process.stderr] });
  process.env.CAUSEWAY_TEST_DEV_HOME = home;
  process.env.CAUSEWAY_TEST_K8S_DIR = path.join(home, 'k8s');
  process.env.KUBECONFIG = path.join(home, 'k8s', 'admin.kubeconfig');
  process.stderr.write(`[k8s-node] causeway dev up --runtime kubernetes in ${home}: ${Date.now() - started} ms\n`);
}
