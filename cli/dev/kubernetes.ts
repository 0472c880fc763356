// `causeway dev up --runtime kubernetes`: beside the dev stack's Temporal and NATS, a cluster
// with one real node (cli/dev/k8s: control plane, containerd, kubelet, kube-proxy, CoreDNS, a
// local registry holding the images) and a kubernetes worker whose steps are pods in the
// namespace `causeway`. Its state is CAUSEWAY_HOME/k8s/dev.json; `dev down` stops the worker,
// then the cluster (which leaves no containers, mounts, iptables rules or bridge behind).
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { readCluster, startCluster, stopCluster } from './k8s/cluster';
import { RESOURCE_IMAGES_ENV } from '../../schemas/resource-images';
import { BASE_RESOURCE_TYPES } from '../../schemas/resources';
import { NODE_IP, NODE_NAME, readNodeState, type NodeImage } from './k8s/node';
import { alive, request, startProcess, stopProcesses, type Tls } from './k8s/procs';
import { repoRoot, type ComponentStatus, type ProgressLog } from './stack';
import type { Endpoints } from './state';

/** The namespace of the dev stack's kubernetes worker. */
export const DEV_NAMESPACE = 'causeway';
const DEV_WORKER_NAME = 'k8s-dev';

const DevKubernetesState = z.object({
  dir: z.string(),
  server: z.string(),
  kubeconfig: z.string(),
  registry: z.string(),
  node: z.string(),
  worker: z.object({ name: z.string(), pid: z.number().int().positive(), log: z.string() }),
});
export type DevKubernetesState = z.infer<typeof DevKubernetesState>;

function clusterDir(home: string): string {
  return path.join(path.resolve(home), 'k8s');
}

function stateFile(home: string): string {
  return path.join(clusterDir(home), 'dev.json');
}

export function readDevKubernetes(home: string): DevKubernetesState | undefined {
  try {
    return DevKubernetesState.parse(JSON.parse(fs.readFileSync(stateFile(home), 'utf8')));
  } catch {
    return undefined;
  }
}

function adminTls(dir: string): Tls {
  const c = readCluster(dir);
  return { ca: fs.readFileSync(c.caFile), cert: fs.readFileSync(c.adminCert), key: fs.readFileSync(c.adminKey) };
}

/**
 * Starts the cluster and the kubernetes worker, or returns the ones already running. A cluster
 * that runs without its worker (the worker died) keeps running and gets a new worker of the same
 * name, which re-attaches to the step pods the old one left.
 */
export async function startDevKubernetes(
  home: string,
  endpoints: Endpoints,
  log: ProgressLog,
): Promise<DevKubernetesState & { reused: boolean }> {
  const existing = readDevKubernetes(home);
  if (existing) {
    const status = await devKubernetesStatus(existing);
    const cluster = status.filter((c) => c.component !== existing.worker.name);
    if (cluster.every((c) => c.alive && c.reachable)) {
      if (status.length > cluster.length && status.every((c) => c.alive)) {
        log(`kubernetes cluster already running in ${existing.dir}; using it`);
        return { ...existing, reused: true };
      }
      log(`kubernetes cluster running in ${existing.dir} without its worker: starting ${existing.worker.name} again`);
      const state = { ...existing, worker: startWorker(home, existing.dir, endpoints) };
      fs.writeFileSync(stateFile(home), JSON.stringify(state, null, 2) + '\n');
      return { ...state, reused: true };
    }
  }
  if (existing || fs.existsSync(path.join(clusterDir(home), 'cluster.json'))) {
    log('kubernetes cluster recorded in CAUSEWAY_HOME is not fully running; stopping what is left of it');
    await stopDevKubernetes(home);
  }
  const dir = clusterDir(home);
  fs.rmSync(dir, { recursive: true, force: true });
  log('starting a Kubernetes control plane and a real node (first time: builds binaries and images, see docs/kubernetes.md)');
  const cluster = await startCluster({ dir, node: 'real', log: (l) => log(l) });
  const node = cluster.node!;
  const tls = adminTls(dir);
  const ns = await request(`${cluster.server}/api/v1/namespaces`, tls, 'POST', JSON.stringify({ metadata: { name: DEV_NAMESPACE } }));
  if (ns.status !== 201 && ns.status !== 409) throw new Error(`creating namespace ${DEV_NAMESPACE}: HTTP ${ns.status} ${ns.body}`);

  log(`starting kubernetes worker ${DEV_WORKER_NAME} (steps run as pods in namespace ${DEV_NAMESPACE})`);
  const state: DevKubernetesState = {
    dir,
    server: cluster.server,
    kubeconfig: cluster.kubeconfig,
    registry: node.registry,
    node: NODE_NAME,
    worker: startWorker(home, dir, endpoints),
  };
  fs.writeFileSync(stateFile(home), JSON.stringify(state, null, 2) + '\n');
  return { ...state, reused: false };
}

function startWorker(home: string, dir: string, endpoints: Endpoints): DevKubernetesState['worker'] {
  const cluster = readCluster(dir);
  const node = cluster.node!;
  const worker = startProcess(
    dir,
    'worker',
    path.join(repoRoot(), 'bin', 'causeway'),
    [
      'worker',
      '--runtime=kubernetes',
      `--namespace=${DEV_NAMESPACE}`,
      `--name=${DEV_WORKER_NAME}`,
      `--kubeconfig=${cluster.kubeconfig}`,
      `--agent-image=${node.images.agent}`,
      `--default-image=${node.images.task}`,
      // Step pods fetch `run -i` uploads from this worker at the node's address.
      `--upload-address=${NODE_IP}`,
    ],
    {
      ...process.env,
      TEMPORAL_ADDRESS: endpoints.temporalAddress,
      NATS_URL: endpoints.natsUrl,
      CAUSEWAY_HOME: path.resolve(home),
      // The base resource types' images in the node's registry, unless the user names others.
      [RESOURCE_IMAGES_ENV]: process.env[RESOURCE_IMAGES_ENV] ?? resourceImages(node.images),
    },
  );
  return { name: DEV_WORKER_NAME, pid: worker.pid, log: worker.log };
}

/** CAUSEWAY_RESOURCE_IMAGES naming the node's pushed resource-TYPE images (a node started by an older causeway has none). */
function resourceImages(images: Partial<Record<NodeImage, string>>): string | undefined {
  const pairs = BASE_RESOURCE_TYPES.flatMap((type) => {
    const ref = images[`resource-${type}` as NodeImage];
    return ref ? [`${type}=${ref}`] : [];
  });
  return pairs.length ? pairs.join(',') : undefined;
}

/** Worker first (it would hand its steps over), then the cluster. Safe when nothing runs. */
export async function stopDevKubernetes(home: string): Promise<DevKubernetesState | undefined> {
  const state = readDevKubernetes(home);
  if (state) await stopProcesses([state.worker]);
  const dir = clusterDir(home);
  if (fs.existsSync(path.join(dir, 'cluster.json'))) await stopCluster(dir);
  fs.rmSync(stateFile(home), { force: true });
  return state;
}

/** The cluster's parts as `dev status` rows: apiserver, registry, node, worker. */
export async function devKubernetesStatus(state: DevKubernetesState): Promise<ComponentStatus[]> {
  const cluster = readCluster(state.dir);
  const node = readNodeState(state.dir);
  const pid = (name: string) => cluster.processes.find((p) => p.name === name)?.pid ?? 0;
  const tls = adminTls(state.dir);
  const ok = async (url: string, t: Tls, check: (body: string) => boolean = () => true) => {
    const res = await request(url, t).catch(() => undefined);
    return res?.status === 200 && check(res.body);
  };
  const nodeReady = (body: string) =>
    (JSON.parse(body) as { status?: { conditions?: { type: string; status: string }[] } }).status?.conditions?.some(
      (c) => c.type === 'Ready' && c.status === 'True',
    ) ?? false;
  const rows: Array<[string, number, string, Promise<boolean>]> = [
    ['kube-apiserver', pid('kube-apiserver'), state.server, ok(`${state.server}/readyz`, tls)],
    ['registry', pid('registry'), state.registry, ok(`http://${state.registry}/v2/`, {})],
    [
      `node ${state.node}`,
      pid('kubelet'),
      node ? `${node.ip} (containerd ${node.containerdSocket})` : '-',
      ok(`${state.server}/api/v1/nodes/${state.node}`, tls, nodeReady),
    ],
    [state.worker.name, state.worker.pid, `namespace ${DEV_NAMESPACE}`, Promise.resolve(true)],
  ];
  return Promise.all(
    rows.map(async ([component, p, address, reachable]) => {
      const isAlive = p > 0 && alive(p);
      return { component, pid: p, alive: isAlive, reachable: isAlive && (await reachable), address };
    }),
  );
}
