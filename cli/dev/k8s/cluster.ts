// A real, throwaway Kubernetes control plane for the kubernetes-runtime tests and benchmarks:
// etcd + kube-apiserver + kube-controller-manager (garbage collector, service accounts, ...)
// + kube-scheduler + KWOK (fake nodes and kubelets), all built from the Go module proxy by
// scripts/k8s/provision.sh, listening on 127.0.0.1 ports the OS hands out, data in one temp
// dir. Certificates, the service-account signing key and an admin kubeconfig are generated
// with openssl. Nothing here is a fake API: clients talk to a real kube-apiserver.
//
//   node dist/test/k8s/cluster.js up DIR     starts one in DIR (prints KUBECONFIG=...), leaves it running
//   node dist/test/k8s/cluster.js down DIR   stops it
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { freePort } from '../stack';
import {
  KUBERNETES_SERVICE_IP,
  NODE_IP,
  SERVICE_CIDR,
  isRealNodeDir,
  prepareNode,
  provisionNode,
  startNode,
  stopNode,
  untaintNode,
  type NodeState,
} from './node';
import { openssl, request, signCertificate, startProcess, stopProcesses, waitFor, type Started, type Tls } from './procs';

const HOST = '127.0.0.1';
/** Addresses KWOK gives its fake pods: from 198.18.0.0/15 like every address of ours, apart from the real node's pods (198.18.0.0/20). */
const KWOK_POD_CIDR = '198.18.16.0/20';

/** Labels and annotations KWOK uses to pick the nodes (and pods) it plays kubelet for. */
export const KWOK_NODE_ANNOTATION = 'kwok.x-k8s.io/node';
/** A pod carrying this annotation (value `custom`) is left alone by KWOK's pod-ready stage: a test drives its status itself. */
export const KWOK_CUSTOM_STATUS_ANNOTATION = 'kwok.x-k8s.io/status';

export interface FakeNode {
  name: string;
  labels: Record<string, string>;
}

export const DEFAULT_NODES: FakeNode[] = [
  { name: 'kwok-node-0', labels: { 'causeway.dev/pool': 'general' } },
  { name: 'kwok-node-1', labels: { 'causeway.dev/pool': 'gpu', 'causeway.dev/tag-gpu': 'true' } },
];

export interface ClusterState {
  dir: string;
  server: string;
  kubeconfig: string;
  caFile: string;
  /** client certificate of a system:masters user */
  adminCert: string;
  adminKey: string;
  etcdUrl: string;
  processes: { name: string; pid: number; log: string }[];
  startedAt: string;
  /** milliseconds from spawn to ready, per component */
  timings: Record<string, number>;
  /** the real node (kubelet, containerd, registry, CoreDNS); absent with KWOK's fake nodes */
  node?: NodeState;
}

export interface StartClusterOptions {
  dir: string;
  /** directory with etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok */
  binDir?: string;
  nodes?: FakeNode[];
  /** `real`: one real node (node.ts) instead of KWOK's fake ones */
  node?: 'kwok' | 'real';
  log?: (line: string) => void;
}

export function repoRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'scripts', 'k8s', 'provision.sh'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find scripts/k8s/provision.sh above ' + __dirname);
    dir = up;
  }
  return dir;
}

/**
 * Runs scripts/k8s/provision.sh: builds the control plane the first time (tens of minutes),
 * returns the cached bin dir immediately afterwards.
 */
export async function provisionControlPlane(log: (line: string) => void = (l) => process.stderr.write(l + '\n')): Promise<string> {
  if (process.env.CAUSEWAY_K8S_BIN && fs.existsSync(path.join(process.env.CAUSEWAY_K8S_BIN, 'kube-apiserver'))) {
    return process.env.CAUSEWAY_K8S_BIN;
  }
  const script = path.join(repoRoot(), 'scripts', 'k8s', 'provision.sh');
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn('bash', [script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n')) if (line.trim()) log(line);
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`${script} exited with ${code}`))));
  });
  const m = /CAUSEWAY_K8S_BIN="([^"]+)"/.exec(out);
  if (!m) throw new Error(`${script} printed no CAUSEWAY_K8S_BIN line: ${out}`);
  return m[1];
}

/** What every task and service container "prints" under KWOK (CRI log format, as a kubelet stores it). */
export const FAKE_TASK_LOG = ['hello from a KWOK pod', 'second line'];

function kwokLogsConfig(dir: string): string {
  const logFile = path.join(dir, 'task.log');
  const at = '2026-01-01T00:00:00.000000000Z';
  fs.writeFileSync(logFile, FAKE_TASK_LOG.map((l) => `${at} stdout F ${l}\n`).join(''));
  const file = path.join(dir, 'kwok-logs.yaml');
  fs.writeFileSync(
    file,
    `apiVersion: kwok.x-k8s.io/v1alpha1\nkind: ClusterLogs\nmetadata:\n  name: task-logs\nspec:\n  logs:\n  - containers: [task, service]\n    logsFile: ${logFile}\n    follow: false\n`,
  );
  return file;
}

/** test/k8s/kwok-stages.yaml, from the sources (dist/ has no YAML copies). */
function kwokStagesFile(): string {
  return path.join(repoRoot(), 'test', 'k8s', 'kwok-stages.yaml');
}

/** CA, apiserver serving cert, admin client cert (system:masters), service-account key pair. */
function generatePki(pki: string): void {
  fs.mkdirSync(pki, { recursive: true });
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-days',
      '30',
      '-subj',
      '/CN=causeway-test-ca',
    ],
    pki,
  );
  const sign = (name: string, subj: string, ext: string) => signCertificate(pki, name, subj, ext);
  sign(
    'apiserver',
    '/CN=kube-apiserver',
    `subjectAltName=IP:127.0.0.1,IP:${NODE_IP},IP:${KUBERNETES_SERVICE_IP},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n`,
  );
  sign('admin', '/O=system:masters/CN=causeway-admin', 'extendedKeyUsage=clientAuth\n');
  openssl(['genrsa', '-out', 'sa.key', '2048'], pki);
  openssl(['rsa', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], pki);
}

export function kubeconfigYaml(
  server: string,
  caFile: string,
  user: { certFile: string; keyFile: string } | { token: string },
  name = 'causeway-test',
): string {
  const userLines =
    'token' in user ? `    token: ${user.token}\n` : `    client-certificate: ${user.certFile}\n    client-key: ${user.keyFile}\n`;
  return (
    `apiVersion: v1\nkind: Config\ncurrent-context: ${name}\n` +
    `clusters:\n- name: ${name}\n  cluster:\n    server: ${server}\n    certificate-authority: ${caFile}\n` +
    `users:\n- name: ${name}\n  user:\n${userLines}` +
    `contexts:\n- name: ${name}\n  context:\n    cluster: ${name}\n    user: ${name}\n`
  );
}

/** Starts a control plane in opts.dir (created if needed) and waits until it serves. */
export async function startCluster(opts: StartClusterOptions): Promise<ClusterState> {
  const log = opts.log ?? (() => undefined);
  const bin = opts.binDir ?? (await provisionControlPlane(log));
  const exe = (name: string) => path.join(bin, name);
  const dir = path.resolve(opts.dir);
  fs.mkdirSync(dir, { recursive: true });
  const real = opts.node === 'real';
  const nodeBin = real ? await provisionNode(repoRoot(), log) : undefined;
  // The apiserver of a real node listens on the node's bridge: pods reach it through the
  // `kubernetes` Service (CoreDNS, an in-cluster worker); the host reaches that address too.
  if (real) await prepareNode(dir, log);
  const apiHost = real ? NODE_IP : HOST;
  const pki = path.join(dir, 'pki');
  const timings: Record<string, number> = {};
  let t = Date.now();
  generatePki(pki);
  timings.pki = Date.now() - t;

  const [etcdClient, etcdPeer, apiPort, cmPort, schedPort, kwokPort] = await Promise.all(Array.from({ length: 6 }, () => freePort()));
  const etcdUrl = `http://${HOST}:${etcdClient}`;
  const server = `https://${apiHost}:${apiPort}`;
  const caFile = path.join(pki, 'ca.crt');
  const adminCert = path.join(pki, 'admin.crt');
  const adminKey = path.join(pki, 'admin.key');
  const kubeconfig = path.join(dir, 'admin.kubeconfig');
  fs.writeFileSync(kubeconfig, kubeconfigYaml(server, caFile, { certFile: adminCert, keyFile: adminKey }));
  const tls: Tls = { ca: fs.readFileSync(caFile), cert: fs.readFileSync(adminCert), key: fs.readFileSync(adminKey) };

  const started: Started[] = [];
  let node: NodeState | undefined;
  const state = (): ClusterState => ({
    dir,
    server,
    kubeconfig,
    caFile,
    adminCert,
    adminKey,
    etcdUrl,
    processes: started.map((p) => ({ name: p.name, pid: p.pid, log: p.log })),
    startedAt: new Date().toISOString(),
    timings,
    node,
  });
  const save = () => fs.writeFileSync(path.join(dir, 'cluster.json'), JSON.stringify(state(), null, 2));

  try {
    t = Date.now();
    const etcd = startProcess(dir, 'etcd', exe('etcd'), [
      '--name=causeway-test',
      `--data-dir=${path.join(dir, 'etcd')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://${HOST}:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://${HOST}:${etcdPeer}`,
      `--initial-cluster=causeway-test=http://${HOST}:${etcdPeer}`,
      // Test data is thrown away: no fsync makes writes cheap on a shared CI disk.
      '--unsafe-no-fsync',
      '--log-level=warn',
    ]);
    started.push(etcd);
    save();
    await waitFor('etcd', etcd, async () => (await request(`${etcdUrl}/health`, {})).body.includes('"health":"true"'));
    timings.etcd = Date.now() - t;

    t = Date.now();
    const apiserver = startProcess(dir, 'kube-apiserver', exe('kube-apiserver'), [
      `--etcd-servers=${etcdUrl}`,
      `--bind-address=${apiHost}`,
      `--advertise-address=${apiHost}`,
      `--secure-port=${apiPort}`,
      `--tls-cert-file=${path.join(pki, 'apiserver.crt')}`,
      `--tls-private-key-file=${path.join(pki, 'apiserver.key')}`,
      `--client-ca-file=${caFile}`,
      '--authorization-mode=Node,RBAC',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${path.join(pki, 'sa.pub')}`,
      `--service-account-signing-key-file=${path.join(pki, 'sa.key')}`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      '--allow-privileged=true',
      // pods/log goes to the node's kubelet port, which KWOK serves
      `--kubelet-client-certificate=${adminCert}`,
      `--kubelet-client-key=${adminKey}`,
      '--kubelet-preferred-address-types=InternalIP',
      `--cert-dir=${path.join(dir, 'apiserver-certs')}`,
      '--enable-priority-and-fairness=false',
      '--profiling=false',
      '--v=1',
    ]);
    started.push(apiserver);
    save();
    await waitFor('kube-apiserver', apiserver, async () => (await request(`${server}/readyz`, tls)).status === 200);
    timings['kube-apiserver'] = Date.now() - t;

    t = Date.now();
    const cm = startProcess(dir, 'kube-controller-manager', exe('kube-controller-manager'), [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      `--bind-address=${HOST}`,
      `--secure-port=${cmPort}`,
      '--leader-elect=false',
      `--root-ca-file=${caFile}`,
      `--service-account-private-key-file=${path.join(pki, 'sa.key')}`,
      '--use-service-account-credentials=false',
      '--controllers=*,-nodeipam,-nodelifecycle,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller,-persistentvolume-binder,-attachdetach,-persistentvolume-expander,-ephemeral-volume,-pvc-protection,-pv-protection',
      '--v=1',
    ]);
    const sched = startProcess(dir, 'kube-scheduler', exe('kube-scheduler'), [
      `--kubeconfig=${kubeconfig}`,
      `--authentication-kubeconfig=${kubeconfig}`,
      `--authorization-kubeconfig=${kubeconfig}`,
      `--bind-address=${HOST}`,
      `--secure-port=${schedPort}`,
      '--leader-elect=false',
      '--v=1',
    ]);
    started.push(cm, sched);
    save();
    const healthz = (port: number) => async () => (await request(`https://${HOST}:${port}/healthz`, { insecure: true })).status === 200;
    await Promise.all([
      waitFor('kube-controller-manager', cm, healthz(cmPort)).then(() => (timings['kube-controller-manager'] = Date.now() - t)),
      waitFor('kube-scheduler', sched, healthz(schedPort)).then(() => (timings['kube-scheduler'] = Date.now() - t)),
    ]);

    if (nodeBin) {
      node = await startNode({
        dir,
        server,
        pki,
        nodeBin,
        repoRoot: repoRoot(),
        freePort,
        log,
        timings,
        started: (p) => {
          started.push(p);
          save();
        },
      });
      save();
      return state();
    }

    t = Date.now();
    const kwok = startProcess(dir, 'kwok', exe('kwok'), [
      `--kubeconfig=${kubeconfig}`,
      '--manage-all-nodes=false',
      `--manage-nodes-with-annotation-selector=${KWOK_NODE_ANNOTATION}=fake`,
      // KWOK's fast stages, with pod-ready skipping pods a test took over (see the file).
      `--config=${kwokStagesFile()}`,
      // KWOK's kubelet API (container logs) on the nodes' kubelet port, over TLS as the
      // apiserver expects; every task container's log is the file written below.
      `--config=${kwokLogsConfig(dir)}`,
      `--server-address=${HOST}:${kwokPort}`,
      `--node-port=${kwokPort}`,
      `--tls-cert-file=${path.join(pki, 'apiserver.crt')}`,
      `--tls-private-key-file=${path.join(pki, 'apiserver.key')}`,
      `--cidr=${KWOK_POD_CIDR}`,
      `--node-ip=${HOST}`,
    ]);
    started.push(kwok);
    save();
    for (const fake of opts.nodes ?? DEFAULT_NODES) await createFakeNode(server, tls, fake);
    await waitFor('KWOK nodes Ready', kwok, async () => {
      const res = await request(`${server}/api/v1/nodes`, tls);
      const items = (JSON.parse(res.body) as { items: { status?: { conditions?: { type: string; status: string }[] } }[] }).items;
      return items.length > 0 && items.every((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    });
    for (const fake of opts.nodes ?? DEFAULT_NODES) await untaintNode(server, tls, fake.name);
    timings.kwok = Date.now() - t;
    save();
    return state();
  } catch (err) {
    if (real) await stopNode(dir, server, tls, log);
    await stopProcesses(started.map((p) => ({ name: p.name, pid: p.pid, log: p.log })));
    throw err;
  }
}

async function createFakeNode(server: string, tls: Tls, node: FakeNode): Promise<void> {
  const body = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: node.name,
      annotations: { [KWOK_NODE_ANNOTATION]: 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      labels: {
        'kubernetes.io/hostname': node.name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        type: 'kwok',
        ...node.labels,
      },
    },
    spec: {},
  };
  const res = await request(`${server}/api/v1/nodes`, tls, 'POST', JSON.stringify(body));
  if (res.status !== 201 && res.status !== 409) throw new Error(`creating node ${node.name}: ${res.status} ${res.body}`);
}

/** Stops what startCluster started in dir; the dir itself is left for the caller. */
export async function stopCluster(dir: string): Promise<void> {
  const file = path.join(dir, 'cluster.json');
  if (!fs.existsSync(file)) return;
  const state = JSON.parse(fs.readFileSync(file, 'utf8')) as ClusterState;
  if (isRealNodeDir(dir)) {
    const tls: Tls = { ca: fs.readFileSync(state.caFile), cert: fs.readFileSync(state.adminCert), key: fs.readFileSync(state.adminKey) };
    await stopNode(dir, state.server, tls, () => undefined);
  }
  await stopProcesses(state.processes);
}

export function readCluster(dir: string): ClusterState {
  return JSON.parse(fs.readFileSync(path.join(dir, 'cluster.json'), 'utf8')) as ClusterState;
}
