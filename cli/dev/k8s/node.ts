// A real Kubernetes node on this machine, beside the control plane of cluster.ts: a local OCI
// registry (Debian's docker-registry) holding the images scripts/images/build.sh makes offline,
// containerd 2.x (built from the Go module proxy) + runc + CNI plugins (Debian's), kubelet and
// kube-proxy (iptables) built by scripts/k8s/provision.sh --node, and CoreDNS as a pod behind the
// kube-dns Service.
//
// Addresses (docs/kubernetes.md "A real node"): the node's IP and the Service range come from
// 198.19.0.0/16 (the node IP on a bridge of ours), pods from 198.18.0.0/20 on the pods' bridge;
// pods get a route to 198.18.0.0/15 only, none out of the machine.
//
// kube-proxy owns the KUBE-* iptables chains of the host's network namespace, so one real node
// runs on a machine at a time: a lock file (NODE_LOCK) says whose it is.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { overlayTakesVolatile } from '../../../common/overlay';
import { writeMirrors } from '../containerd';
import { alive, request, signCertificate, startProcess, stopProcesses, waitFor, type Started, type Tls } from './procs';

export const NODE_NAME = 'causeway-node';
export const NODE_BRIDGE = 'cwk8s0';
/** The pods' bridge, made by the CNI bridge plugin (1.1 refuses a bridge holding another subnet's address). */
const POD_BRIDGE = 'cwpods0';
export const NODE_IP = '198.19.128.1';
const NODE_PREFIX = 24;
export const POD_CIDR = '198.18.0.0/20';
const POD_GATEWAY = '198.18.0.1';
export const SERVICE_CIDR = '198.19.0.0/20';
/** The first address of SERVICE_CIDR: the apiserver's `kubernetes` Service. */
export const KUBERNETES_SERVICE_IP = '198.19.0.1';
export const DNS_SERVICE_IP = '198.19.0.10';
export const CLUSTER_DOMAIN = 'cluster.local';
/** What pods may reach: the benchmark range (pods, node, Services); no default route. */
const POD_ROUTES = ['198.18.0.0/15'];
const NODE_LOCK = '/run/causeway-k8s-node.lock';
/** where `ip netns` and CNI keep named network namespaces (/var/run is a link to /run) */
const NETNS_DIR = '/run/netns';
const LOCK_WAIT_MS = 15 * 60_000;
const CONTAINERD_NAMESPACE = 'k8s.io';
/**
 * The pods' parent in cgroup v1's cpu hierarchy: with `cgroupsPerQOS: false` there is no
 * kubepods, and containerd puts each container in /<its CRI namespace>/<id>.
 */
const PODS_CPU_CGROUP = `/sys/fs/cgroup/cpu/${CONTAINERD_NAMESPACE}`;
const DEFAULT_CPU_SHARES = 1024;
/**
 * Images the node pushes to its registry at start (scripts/images/build.sh names). The worker
 * image (the whole of dist/) is pushed by what needs it (test/k8s/node/deploy.test.ts): it changes with every build.
 */
export const NODE_IMAGES = [
  'pause',
  'coredns',
  'task',
  'postgres',
  'redis',
  'agent',
  'busybox',
  // The base resource types as images: a kubernetes worker runs git, time, registry-image and
  // mock (Concourse's test resource, which testflight's pipelines use) in pods of these.
  'resource-git',
  'resource-time',
  'resource-registry-image',
  'resource-mock',
] as const;
/** busybox is also served under Docker Hub's name, as on the containerd runtime: plans naming `busybox` run unchanged. */
const DOCKER_HUB_BUSYBOX = 'library/busybox:latest';
export type NodeImage = (typeof NODE_IMAGES)[number];

export interface NodeState {
  name: string;
  ip: string;
  bridge: string;
  registry: string;
  images: Record<NodeImage, string>;
  containerdSocket: string;
  /** containerd's root: images and snapshots, kept across runs of the same containerd version */
  imageStore: string;
  kubeletPort: number;
  processes: { name: string; pid: number; log: string }[];
  /** network namespaces that existed before the node started: the rest under /var/run/netns are the node's */
  netnsBefore: string[];
}

export interface StartNodeOptions {
  dir: string;
  server: string;
  pki: string;
  /** kubelet, kube-proxy, coredns, and containerd's own dir (scripts/k8s/provision.sh --node) */
  nodeBin: NodeBin;
  repoRoot: string;
  freePort: () => Promise<number>;
  log: (line: string) => void;
  timings: Record<string, number>;
  /** record a started process in the cluster's state (so `down` stops it even if start fails) */
  started: (p: Started) => void;
}

function sh(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], input: opts.input, env: opts.env ?? process.env });
}

function trySh(cmd: string, args: string[]): boolean {
  try {
    sh(cmd, args);
    return true;
  } catch {
    return false;
  }
}

export interface NodeBin {
  /** kubelet, kube-proxy, kubectl, coredns */
  bin: string;
  /** containerd, containerd-shim-runc-v2 (a dir per containerd version) */
  containerd: string;
}

/** Runs scripts/k8s/provision.sh --node (builds the first time), returns its bin dirs. */
export function provisionNode(repoRoot: string, log: (line: string) => void): Promise<NodeBin> {
  const { CAUSEWAY_K8S_NODE_BIN: bin, CAUSEWAY_CONTAINERD_BIN: containerd } = process.env;
  if (bin && containerd && fs.existsSync(path.join(bin, 'kubelet')) && fs.existsSync(path.join(containerd, 'containerd'))) {
    return Promise.resolve({ bin, containerd });
  }
  return runScript(repoRoot, ['scripts/k8s/provision.sh', '--node'], log).then((out) => {
    const m = /CAUSEWAY_K8S_NODE_BIN="([^"]+)" CAUSEWAY_CONTAINERD_BIN="([^"]+)"/.exec(out);
    if (!m) throw new Error(`scripts/k8s/provision.sh --node printed no CAUSEWAY_K8S_NODE_BIN/CAUSEWAY_CONTAINERD_BIN line: ${out}`);
    return { bin: m[1], containerd: m[2] };
  });
}

function runScript(repoRoot: string, args: string[], log: (line: string) => void, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const child = spawn('bash', args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n')) if (line.trim()) log(line);
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`bash ${args.join(' ')} exited with ${code}`))));
  });
}

/** Tools a real node needs from Debian; scripts/k8s/node-packages.sh installs them (containerd is our own build). */
const REQUIRED_TOOLS = ['runc', 'ctr', 'docker-registry', 'umoci', 'skopeo', 'mmdebstrap', 'busybox', 'iptables', 'ip'];

function checkTools(): void {
  const missing = REQUIRED_TOOLS.filter((t) => !trySh('sh', ['-c', `command -v ${t}`]));
  if (!fs.existsSync('/usr/lib/cni/bridge')) missing.push('containernetworking-plugins (/usr/lib/cni/bridge)');
  if (missing.length > 0) throw new Error(`a real node needs ${missing.join(', ')}: run bash scripts/k8s/node-packages.sh (as root)`);
  if (process.getuid?.() !== 0) throw new Error('a real node (containerd, kubelet, iptables) needs root');
}

/** Takes the machine's node lock for dir, waiting for another node to stop (or its owner to die). */
async function lockNode(dir: string, log: (line: string) => void): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  let said = false;
  for (;;) {
    try {
      fs.writeFileSync(NODE_LOCK, JSON.stringify({ dir, pid: process.pid }), { flag: 'wx' });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = readLock();
    if (holder && !lockAlive(holder)) {
      log(`node lock ${NODE_LOCK} of ${holder.dir} is stale: cleaning its leftovers`);
      await cleanupNode(holder.dir, log);
      fs.rmSync(NODE_LOCK, { force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `another real node runs on this machine (${holder?.dir}, lock ${NODE_LOCK}); kube-proxy's iptables chains are per machine, so stop it first (causeway dev down, or node dist/test/k8s/cluster.js down ${holder?.dir})`,
      );
    }
    if (!said) log(`waiting for the real node of ${holder?.dir} to stop (lock ${NODE_LOCK})`);
    said = true;
    await sleep(2000);
  }
}

function readLock(): { dir: string; pid: number } | undefined {
  return readJson<{ dir: string; pid: number }>(NODE_LOCK);
}

/** A lock is alive while its node's processes (or, before they start, its starter) are. */
function lockAlive(holder: { dir: string; pid: number }): boolean {
  const state = readNodeState(holder.dir);
  if (state && state.processes.some((p) => alive(p.pid))) return true;
  return alive(holder.pid) && !state;
}

function nodeStateFile(dir: string): string {
  return path.join(dir, 'node.json');
}

export function readNodeState(dir: string): NodeState | undefined {
  return readJson<NodeState>(nodeStateFile(dir));
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** The node's serving certificate (for the apiserver → kubelet calls) and its client certificate (system:node:NAME). */
function nodePki(pki: string): void {
  const sign = (name: string, subj: string, ext: string) => signCertificate(pki, name, subj, ext);
  sign('kubelet', `/CN=${NODE_NAME}`, `subjectAltName=IP:${NODE_IP},DNS:${NODE_NAME}\nextendedKeyUsage=serverAuth\n`);
  sign('node', `/O=system:nodes/CN=system:node:${NODE_NAME}`, 'extendedKeyUsage=clientAuth\n');
  sign('kube-proxy', '/CN=system:kube-proxy', 'extendedKeyUsage=clientAuth\n');
}

function kubeconfig(server: string, pki: string, user: string): string {
  return (
    `apiVersion: v1\nkind: Config\ncurrent-context: c\n` +
    `clusters:\n- name: c\n  cluster:\n    server: ${server}\n    certificate-authority: ${path.join(pki, 'ca.crt')}\n` +
    `users:\n- name: u\n  user:\n    client-certificate: ${path.join(pki, `${user}.crt`)}\n    client-key: ${path.join(pki, `${user}.key`)}\n` +
    `contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n`
  );
}

function setUpBridge(): void {
  if (!trySh('ip', ['link', 'show', NODE_BRIDGE])) sh('ip', ['link', 'add', NODE_BRIDGE, 'type', 'bridge']);
  trySh('ip', ['addr', 'add', `${NODE_IP}/${NODE_PREFIX}`, 'dev', NODE_BRIDGE]);
  sh('ip', ['link', 'set', NODE_BRIDGE, 'up']);
}

function cniConfig(dir: string): string {
  const confDir = path.join(dir, 'cni');
  fs.mkdirSync(confDir, { recursive: true });
  fs.writeFileSync(
    path.join(confDir, '10-causeway.conflist'),
    JSON.stringify(
      {
        cniVersion: '1.0.0',
        name: 'causeway',
        plugins: [
          {
            type: 'bridge',
            bridge: POD_BRIDGE,
            isGateway: true,
            ipMasq: false,
            // a pod reaching itself through its Service's ClusterIP
            hairpinMode: true,
            ipam: {
              type: 'host-local',
              ranges: [[{ subnet: POD_CIDR, gateway: POD_GATEWAY }]],
              routes: POD_ROUTES.map((dst) => ({ dst })),
              dataDir: path.join(dir, 'cni-ipam'),
            },
          },
          { type: 'portmap', capabilities: { portMappings: true } },
        ],
      },
      null,
      2,
    ),
  );
  return confDir;
}

/**
 * containerd's config (version 3, containerd 2.x): its own root (images stay across runs), state
 * and socket in dir.
 */
function containerdConfig(
  dir: string,
  registry: string,
  pauseImage: string,
  nodeBin: NodeBin,
): { config: string; socket: string; imageStore: string } {
  const root = path.join(dir, 'containerd');
  const certs = path.join(root, 'certs.d', registry);
  fs.mkdirSync(certs, { recursive: true });
  // containerd pulls from the local registry over plain HTTP.
  fs.writeFileSync(
    path.join(certs, 'hosts.toml'),
    `server = "http://${registry}"\n\n[host."http://${registry}"]\n  capabilities = ["pull", "resolve"]\n`,
  );
  writeMirrors(path.join(root, 'certs.d'), registry);
  const socket = path.join(root, 'containerd.sock');
  const config = path.join(root, 'config.toml');
  const imageStore = imageStoreRoot(nodeBin);
  const cri = "plugins.'io.containerd.cri.v1.runtime'";
  // A container's root is scratch: its unmount need not sync the disk under it, which wrote back
  // every dirty page there (a producer's fresh output, a fetched input) before the kubelet learnt of
  // the container's exit (BENCHMARKS.md, "Container roots without a sync"). Image layers are
  // unpacked straight into their directories, without this mount, so the store keeps its syncs.
  const snapshotter = overlayTakesVolatile() ? `[plugins.'io.containerd.snapshotter.v1.overlayfs']\n  mount_options = ["volatile"]\n` : '';
  fs.writeFileSync(
    config,
    `version = 3
root = "${imageStore}"
state = "${path.join(root, 'state')}"
[grpc]
  address = "${socket}"
[plugins.'io.containerd.cri.v1.images']
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "${pauseImage}"
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = "${path.join(root, 'certs.d')}"
[${cri}]
  # This machine refuses lowering oom_score_adj (no CAP_SYS_RESOURCE): without it every sandbox fails.
  restrict_oom_score_adj = true
  enable_selinux = false
  [${cri}.cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "${cniConfig(dir)}"
  [${cri}.containerd]
    default_runtime_name = "runc"
    [${cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      # Our shim, not Debian's 1.6 one that PATH would find first; runc is Debian's.
      runtime_path = "${path.join(nodeBin.containerd, 'containerd-shim-runc-v2')}"
      [${cri}.containerd.runtimes.runc.options]
        # cgroup v1 managed by cgroupfs, as the kubelet's cgroupDriver says.
        SystemdCgroup = false
${snapshotter}`,
  );
  return { config, socket, imageStore };
}

/**
 * containerd's content and snapshots live across runs (one node at a time): pulls after the
 * first are cheap. One store per containerd version (its dir's name): a store is not shared
 * between containerd versions.
 */
function imageStoreRoot(nodeBin: NodeBin): string {
  return path.join(cacheDir(), `k8s-node-${path.basename(path.dirname(nodeBin.containerd))}`);
}

function cacheDir(): string {
  return process.env.CAUSEWAY_CACHE ?? path.join(os.homedir(), '.cache', 'causeway');
}

function registryStorage(): string {
  return path.join(cacheDir(), 'k8s-registry');
}

function kubeletConfig(dir: string, pki: string, socket: string, kubeletPort: number, healthzPort: number): string {
  const resolv = path.join(dir, 'resolv.conf');
  // Pods with dnsPolicy Default (CoreDNS itself) get this: nothing outside the cluster resolves.
  fs.writeFileSync(resolv, 'nameserver 127.0.0.1\n');
  const file = path.join(dir, 'kubelet.yaml');
  const cfg = {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    address: NODE_IP,
    port: kubeletPort,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort,
    tlsCertFile: path.join(pki, 'kubelet.crt'),
    tlsPrivateKeyFile: path.join(pki, 'kubelet.key'),
    // The apiserver's kubelet client certificate (pods/log, exec) is signed by the cluster CA.
    authentication: { anonymous: { enabled: false }, webhook: { enabled: false }, x509: { clientCAFile: path.join(pki, 'ca.crt') } },
    authorization: { mode: 'AlwaysAllow' },
    containerRuntimeEndpoint: `unix://${socket}`,
    // What containerd's runc options say too (SystemdCgroup = false).
    cgroupDriver: 'cgroupfs',
    // cgroup v1 without the QoS hierarchy and without reservations: the machine is shared.
    cgroupsPerQOS: false,
    // Without pod cgroups the kubelet's in-place resize path dereferences a nil pod memory
    // config (panic at kuberuntime_manager.go:837, doPodResizeAction, seen mid-build here).
    // EventedPLEG: the kubelet learns of a container's exit from containerd's CRI events at once,
    // not at its next relist (every 1 s), which was ~0.5 s of every step's gap.
    featureGates: { InPlacePodVerticalScaling: false, EventedPLEG: true },
    enforceNodeAllocatable: [],
    failSwapOn: false,
    evictionHard: {},
    localStorageCapacityIsolation: false,
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    clusterDNS: [DNS_SERVICE_IP],
    clusterDomain: CLUSTER_DOMAIN,
    resolvConf: resolv,
    podLogsDir: path.join(dir, 'pod-logs'),
    serializeImagePulls: false,
    maxPods: 250,
    // Pods' status reaches the apiserver as soon as it changes (the step-gap benchmark).
    nodeStatusUpdateFrequency: '10s',
    fileCheckFrequency: '0s',
  };
  fs.writeFileSync(file, JSON.stringify(cfg, null, 2));
  return file;
}

function kubeProxyConfig(dir: string, kubeconfigFile: string, healthzPort: number, metricsPort: number): string {
  const file = path.join(dir, 'kube-proxy.yaml');
  const cfg = {
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    clientConnection: { kubeconfig: kubeconfigFile },
    hostnameOverride: NODE_NAME,
    bindAddress: NODE_IP,
    healthzBindAddress: `127.0.0.1:${healthzPort}`,
    metricsBindAddress: `127.0.0.1:${metricsPort}`,
    mode: 'iptables',
    clusterCIDR: POD_CIDR,
    // Every Service connection is masqueraded: replies come back through the node even from
    // a pod that reaches itself, or the host reaching a pod.
    iptables: { masqueradeAll: true, syncPeriod: '30s', minSyncPeriod: '0s' },
    // The machine's conntrack table is sized already; kube-proxy may not resize it here.
    conntrack: { maxPerCore: 0 },
    nodePortAddresses: [`${NODE_IP}/32`],
  };
  fs.writeFileSync(file, JSON.stringify(cfg, null, 2));
  return file;
}

/** POSTs one object to its collection (409: it is there already). */
async function createObject(server: string, tls: Tls, obj: KubeObject): Promise<void> {
  const [group, version] = obj.apiVersion.includes('/') ? obj.apiVersion.split('/') : ['', obj.apiVersion];
  const base = group ? `${server}/apis/${group}/${version}` : `${server}/api/${version}`;
  const plural = `${obj.kind.toLowerCase()}s`.replace(/ys$/, 'ies').replace(/sss$/, 'sses');
  const url = obj.metadata.namespace ? `${base}/namespaces/${obj.metadata.namespace}/${plural}` : `${base}/${plural}`;
  const res = await request(url, tls, 'POST', JSON.stringify(obj));
  if (res.status !== 201 && res.status !== 409)
    throw new Error(`creating ${obj.kind} ${obj.metadata.name}: HTTP ${res.status} ${res.body}`);
}

interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: unknown;
}

/** Objects that make the node a cluster: CoreDNS (its RBAC, Corefile, pod) behind kube-dns. */
export function coreDnsObjects(image: string): KubeObject[] {
  const labels = { 'k8s-app': 'kube-dns' };
  const ns = 'kube-system';
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'coredns', namespace: ns } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'system:coredns' },
      rules: [
        { apiGroups: [''], resources: ['endpoints', 'services', 'pods', 'namespaces'], verbs: ['list', 'watch'] },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'system:coredns' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:coredns' },
      subjects: [{ kind: 'ServiceAccount', name: 'coredns', namespace: ns }],
    },
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'coredns', namespace: ns },
      // No forward plugin: pods resolve cluster names only (they have no route out anyway).
      data: {
        Corefile: `.:53 {\n    errors\n    health :8080\n    ready :8181\n    kubernetes ${CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {\n        pods insecure\n        ttl 5\n    }\n    cache 5\n}\n`,
      },
    },
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'coredns', namespace: ns, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: 'coredns',
            dnsPolicy: 'Default',
            priorityClassName: 'system-cluster-critical',
            containers: [
              {
                name: 'coredns',
                image,
                args: ['-conf', '/etc/coredns/Corefile'],
                ports: [
                  { name: 'dns', containerPort: 53, protocol: 'UDP' },
                  { name: 'dns-tcp', containerPort: 53, protocol: 'TCP' },
                ],
                // Port 53: an added capability is not effective for a non-root uid (no ambient
                // capabilities), so CoreDNS runs as root in its own pod, as kubeadm's did before 1.25.
                securityContext: { runAsUser: 0 },
                readinessProbe: { httpGet: { path: '/ready', port: 8181 }, periodSeconds: 1 },
                volumeMounts: [{ name: 'config', mountPath: '/etc/coredns' }],
              },
            ],
            volumes: [{ name: 'config', configMap: { name: 'coredns' } }],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'kube-dns', namespace: ns, labels },
      spec: {
        clusterIP: DNS_SERVICE_IP,
        selector: labels,
        ports: [
          { name: 'dns', port: 53, protocol: 'UDP' },
          { name: 'dns-tcp', port: 53, protocol: 'TCP' },
        ],
      },
    },
  ];
}

/**
 * Before the control plane starts: the machine's node lock, and the bridge carrying NODE_IP
 * (the apiserver listens there, so pods reach it through the `kubernetes` Service).
 */
export async function prepareNode(dir: string, log: (line: string) => void): Promise<void> {
  checkTools();
  await lockNode(dir, log);
  try {
    shareNetnsDir();
    fs.writeFileSync(netnsBeforeFile(dir), JSON.stringify(listNetns()));
    setUpBridge();
  } catch (err) {
    fs.rmSync(NODE_LOCK, { force: true });
    throw err;
  }
}

/**
 * Starts the node for the control plane at opts.server (which listens on NODE_IP, with a
 * Service range of SERVICE_CIDR) and waits until it is Ready and CoreDNS answers.
 */
export async function startNode(opts: StartNodeOptions): Promise<NodeState> {
  const { dir, pki, log, timings } = opts;
  const netnsBefore = JSON.parse(fs.readFileSync(netnsBeforeFile(dir), 'utf8')) as string[];
  const processes: Started[] = [];
  const track = (p: Started) => {
    processes.push(p);
    opts.started(p);
  };
  const tls: Tls = {
    ca: fs.readFileSync(path.join(pki, 'ca.crt')),
    cert: fs.readFileSync(path.join(pki, 'admin.crt')),
    key: fs.readFileSync(path.join(pki, 'admin.key')),
  };
  const exe = (name: string) => path.join(opts.nodeBin.bin, name);
  let t = Date.now();

  nodePki(pki);

  // The registry, and the images pushed to it (built the first time, cached afterwards).
  const registryPort = await opts.freePort();
  const registry = `127.0.0.1:${registryPort}`;
  const registryConfig = path.join(dir, 'registry.yml');
  fs.mkdirSync(registryStorage(), { recursive: true });
  fs.writeFileSync(
    registryConfig,
    `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${registryStorage()}\n  delete:\n    enabled: true\nhttp:\n  addr: ${registry}\n`,
  );
  const reg = startProcess(dir, 'registry', 'docker-registry', ['serve', registryConfig]);
  track(reg);
  await waitFor('registry', reg, async () => (await request(`http://${registry}/v2/`, {})).status === 200);
  timings.registry = Date.now() - t;
  t = Date.now();
  const out = await runScript(opts.repoRoot, ['scripts/images/build.sh', '--push', registry, ...NODE_IMAGES], log, {
    ...process.env,
    CAUSEWAY_K8S_NODE_BIN: opts.nodeBin.bin,
  });
  const images = Object.fromEntries(
    out
      .trim()
      .split('\n')
      .map((l) => l.split(' ') as [string, string]),
  ) as Record<NodeImage, string>;
  for (const name of NODE_IMAGES) if (!images[name]) throw new Error(`scripts/images/build.sh did not push ${name}: ${out}`);
  execFileSync(
    'skopeo',
    [
      'copy',
      '--quiet',
      '--src-tls-verify=false',
      '--dest-tls-verify=false',
      `docker://${images.busybox}`,
      `docker://${registry}/${DOCKER_HUB_BUSYBOX}`,
    ],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  timings.images = Date.now() - t;

  // containerd
  t = Date.now();
  weighPods();
  const { config, socket, imageStore } = containerdConfig(dir, registry, images.pause, opts.nodeBin);
  const containerd = startProcess(dir, 'containerd', path.join(opts.nodeBin.containerd, 'containerd'), ['--config', config]);
  track(containerd);
  await waitFor('containerd', containerd, async () => trySh('ctr', ['--address', socket, 'version']));
  await waitFor("containerd's CRI", containerd, () => criReady(socket));
  removeLeftoverContainers(socket, log);
  timings.containerd = Date.now() - t;

  // kubelet
  t = Date.now();
  const [kubeletPort, kubeletHealthz, proxyHealthz, proxyMetrics] = await Promise.all([
    opts.freePort(),
    opts.freePort(),
    opts.freePort(),
    opts.freePort(),
  ]);
  const nodeKubeconfig = path.join(dir, 'node.kubeconfig');
  fs.writeFileSync(nodeKubeconfig, kubeconfig(opts.server, pki, 'node'));
  const proxyKubeconfig = path.join(dir, 'kube-proxy.kubeconfig');
  fs.writeFileSync(proxyKubeconfig, kubeconfig(opts.server, pki, 'kube-proxy'));
  const kubeletRoot = path.join(dir, 'kubelet');
  fs.mkdirSync(kubeletRoot, { recursive: true });
  const state: NodeState = {
    name: NODE_NAME,
    ip: NODE_IP,
    bridge: NODE_BRIDGE,
    registry,
    images,
    containerdSocket: socket,
    imageStore,
    kubeletPort,
    processes: [],
    netnsBefore,
  };
  const save = () =>
    fs.writeFileSync(
      nodeStateFile(dir),
      JSON.stringify({ ...state, processes: processes.map((p) => ({ name: p.name, pid: p.pid, log: p.log })) }, null, 2),
    );
  save();
  const kubelet = startProcess(dir, 'kubelet', exe('kubelet'), [
    `--config=${kubeletConfig(dir, pki, socket, kubeletPort, kubeletHealthz)}`,
    `--kubeconfig=${nodeKubeconfig}`,
    `--hostname-override=${NODE_NAME}`,
    `--node-ip=${NODE_IP}`,
    `--root-dir=${kubeletRoot}`,
    `--node-labels=causeway.dev/pool=general`,
    '--v=1',
  ]);
  track(kubelet);
  save();
  const proxy = startProcess(dir, 'kube-proxy', exe('kube-proxy'), [
    `--config=${kubeProxyConfig(dir, proxyKubeconfig, proxyHealthz, proxyMetrics)}`,
    '--v=1',
  ]);
  track(proxy);
  save();
  await waitFor('kubelet: node Ready', kubelet, async () => {
    const res = await request(`${opts.server}/api/v1/nodes/${NODE_NAME}`, tls);
    if (res.status !== 200) return false;
    const node = JSON.parse(res.body) as { status?: { conditions?: { type: string; status: string }[] } };
    return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  });
  timings.kubelet = Date.now() - t;
  await untaintNode(opts.server, tls, NODE_NAME);
  await waitFor('kube-proxy', proxy, async () => (await request(`http://127.0.0.1:${proxyHealthz}/healthz`, {})).status === 200);

  // CoreDNS behind kube-dns
  t = Date.now();
  for (const obj of coreDnsObjects(images.coredns)) await createObject(opts.server, tls, obj);
  await waitFor('CoreDNS', kubelet, async () => {
    const res = await request(`${opts.server}/apis/apps/v1/namespaces/kube-system/deployments/coredns`, tls);
    return res.status === 200 && ((JSON.parse(res.body) as { status?: { readyReplicas?: number } }).status?.readyReplicas ?? 0) >= 1;
  });
  timings.coredns = Date.now() - t;
  save();
  return { ...state, processes: processes.map((p) => ({ name: p.name, pid: p.pid, log: p.log })) };
}

/**
 * Gives the pods' cgroup the CPU weight a kubelet gives kubepods: the node's CPUs, 1024 each. At
 * the default 1024 all pods together weighed as much as one busy process of the host, so under
 * load they got a fraction of what a host process gets (tar c | tar x 1.6–3.5× slower in a pod).
 * cgroup v1 only (this machine's); on v2 the weight is cpu.weight and is left alone.
 */
function weighPods(): void {
  if (!fs.existsSync(path.dirname(PODS_CPU_CGROUP))) return;
  fs.mkdirSync(PODS_CPU_CGROUP, { recursive: true });
  fs.writeFileSync(path.join(PODS_CPU_CGROUP, 'cpu.shares'), String(DEFAULT_CPU_SHARES * os.cpus().length));
}

/** A cluster dir whose node is (or was being) a real one. */
export function isRealNodeDir(dir: string): boolean {
  return fs.existsSync(netnsBeforeFile(dir));
}

function netnsBeforeFile(dir: string): string {
  return path.join(dir, 'netns-before.json');
}

/**
 * Makes /run/netns a mount of its own, shared, as `ip netns add` does the first time it runs.
 * CNI bind-mounts pods' namespaces there without it; an `ip netns add` after them (a service
 * network of the local runtime) then bind-mounts the directory over itself and hides those
 * mounts: they can no longer be unmounted by path ("not mounted") nor removed (EBUSY), and
 * `dev down` failed on them, leaving the whole stack running.
 */
function shareNetnsDir(): void {
  fs.mkdirSync(NETNS_DIR, { recursive: true });
  const mountPoints = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4]);
  if (mountPoints.includes(NETNS_DIR)) return;
  sh('mount', ['--bind', NETNS_DIR, NETNS_DIR]);
  sh('mount', ['--make-shared', NETNS_DIR]);
}

function listNetns(): string[] {
  try {
    return fs.readdirSync(NETNS_DIR);
  } catch {
    return [];
  }
}

/**
 * Whether containerd's CRI plugin serves: `ctr version` answers before the plugin has
 * initialized, and a kubelet started then exits at once ("validate CRI v1 runtime API ... server
 * is not initialized yet", seen at load 10). One CRI `Version` call (an empty request).
 */
function criReady(socket: string): Promise<boolean> {
  const client = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure());
  return new Promise<boolean>((resolve) => {
    client.makeUnaryRequest(
      '/runtime.v1.RuntimeService/Version',
      () => Buffer.alloc(0),
      (b: Buffer) => b,
      {},
      new grpc.Metadata(),
      { deadline: Date.now() + 2000 },
      (err) => resolve(!err),
    );
  }).finally(() => client.close());
}

/** Containers of an earlier node that did not stop cleanly (the image store is shared across runs). */
function removeLeftoverContainers(socket: string, log: (line: string) => void): void {
  const ctr = (...args: string[]) => sh('ctr', ['--address', socket, '--namespace', CONTAINERD_NAMESPACE, ...args]);
  const tasks = ctr('tasks', 'ls', '-q').split('\n').filter(Boolean);
  for (const id of tasks) trySh('ctr', ['--address', socket, '--namespace', CONTAINERD_NAMESPACE, 'tasks', 'kill', '-s', 'SIGKILL', id]);
  for (const id of tasks) trySh('ctr', ['--address', socket, '--namespace', CONTAINERD_NAMESPACE, 'tasks', 'rm', '-f', id]);
  const containers = ctr('containers', 'ls', '-q').split('\n').filter(Boolean);
  for (const id of containers) trySh('ctr', ['--address', socket, '--namespace', CONTAINERD_NAMESPACE, 'containers', 'rm', id]);
  if (tasks.length + containers.length > 0) log(`removed ${containers.length} leftover containers (${tasks.length} running)`);
}

/**
 * New nodes carry node.kubernetes.io/not-ready:NoSchedule (the TaintNodesByCondition
 * admission), which the node lifecycle controller lifts once they are Ready. That controller
 * is off here (it would mark nodes NotReady whenever a loaded CI machine delays a heartbeat),
 * so the taint is lifted as it would.
 */
export async function untaintNode(server: string, tls: Tls, name: string): Promise<void> {
  const res = await request(
    `${server}/api/v1/nodes/${name}`,
    tls,
    'PATCH',
    JSON.stringify({ spec: { taints: null } }),
    'application/merge-patch+json',
  );
  if (res.status !== 200) throw new Error(`untainting node ${name}: ${res.status} ${res.body}`);
}

/** Every mount point under one of dirs, deepest first. */
function mountsUnder(dirs: string[]): string[] {
  const mounts = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => !!m)
    .map((m) => m.replace(/\\040/g, ' '));
  return mounts.filter((m) => dirs.some((d) => m === d || m.startsWith(d + '/'))).sort((a, b) => b.length - a.length);
}

/**
 * Stops the node of dir and removes what it made: pods' containers, kubelet and containerd
 * mounts, kube-proxy's iptables rules, the bridge, network namespaces, pod logs. Safe to run
 * twice, and on a node whose start failed halfway.
 */
export async function stopNode(
  dir: string,
  server: string | undefined,
  adminTls: Tls | undefined,
  log: (line: string) => void,
): Promise<void> {
  const state = readNodeState(dir);
  if (state) {
    // The kubelet stops pods properly (CNI DEL, sandbox removal) when they are deleted.
    if (server && adminTls && state.processes.some((p) => p.name === 'kubelet' && alive(p.pid))) await drain(server, adminTls, log);
    const order = ['kube-proxy', 'kubelet', 'containerd', 'registry'];
    for (const name of order) {
      const procs = state.processes.filter((p) => p.name === name);
      if (name === 'containerd' && procs.some((p) => alive(p.pid))) removeLeftoverContainers(state.containerdSocket, log);
      await stopProcesses(procs);
    }
  }
  await cleanupNode(dir, log);
  const holder = readLock();
  if (holder?.dir === dir) fs.rmSync(NODE_LOCK, { force: true });
}

/** Deletes every pod at once (grace 0) and waits for the kubelet to remove their sandboxes. */
async function drain(server: string, tls: Tls, log: (line: string) => void): Promise<void> {
  const started = Date.now();
  const res = await request(`${server}/api/v1/pods?fieldSelector=spec.nodeName%3D${NODE_NAME}`, tls).catch(() => undefined);
  if (!res || res.status !== 200) return;
  const pods = (JSON.parse(res.body) as { items: { metadata: { name: string; namespace: string } }[] }).items;
  // Controllers would replace deleted pods (CoreDNS's Deployment): scale them away first.
  await request(`${server}/apis/apps/v1/namespaces/kube-system/deployments/coredns`, tls, 'DELETE').catch(() => undefined);
  await Promise.all(
    pods.map((p) =>
      request(
        `${server}/api/v1/namespaces/${p.metadata.namespace}/pods/${p.metadata.name}`,
        tls,
        'DELETE',
        JSON.stringify({ gracePeriodSeconds: 0 }),
      ).catch(() => undefined),
    ),
  );
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const left = await request(`${server}/api/v1/pods?fieldSelector=spec.nodeName%3D${NODE_NAME}`, tls).catch(() => undefined);
    if (left?.status === 200 && (JSON.parse(left.body) as { items: unknown[] }).items.length === 0) break;
    await sleep(200);
  }
  log(`node drained of ${pods.length} pods in ${Date.now() - started} ms`);
}

/** What a node leaves when its processes are gone: shims, mounts, iptables chains, the bridge, netns, logs. */
export async function cleanupNode(dir: string, log: (line: string) => void): Promise<void> {
  const state = readNodeState(dir);
  const containerdRoot = path.join(dir, 'containerd');
  // containerd's shims outlive containerd; they are ours when they name our socket.
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let cmdline = '';
    try {
      cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    if (path.basename(cmdline.split('\0')[0]).startsWith('containerd-shim') && cmdline.includes(containerdRoot)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  for (const m of mountsUnder([dir, ...(state?.imageStore ? [state.imageStore] : [])])) {
    if (!trySh('umount', [m])) trySh('umount', ['-l', m]);
  }
  const before = state?.netnsBefore ?? readJson<string[]>(netnsBeforeFile(dir));
  if (before) {
    for (const ns of listNetns().filter((n) => n.startsWith('cni-') && !before.includes(n))) {
      const p = path.join(NETNS_DIR, ns);
      trySh('umount', [p]);
      try {
        fs.rmSync(p, { force: true });
      } catch (err) {
        // The rest of the clean-up must still run; what is left is said, not thrown.
        log(`could not remove network namespace ${p}: ${(err as Error).message} (see its mount in /proc/self/mountinfo)`);
      }
    }
  }
  removeKubeChains();
  if (fs.existsSync(PODS_CPU_CGROUP)) fs.writeFileSync(path.join(PODS_CPU_CGROUP, 'cpu.shares'), String(DEFAULT_CPU_SHARES));
  for (const bridge of [POD_BRIDGE, NODE_BRIDGE]) if (trySh('ip', ['link', 'show', bridge])) trySh('ip', ['link', 'del', bridge]);
  log('node cleaned up');
}

/** kube-proxy's and the kubelet's iptables chains (KUBE-*), and the rules jumping to them. */
function removeKubeChains(): void {
  for (const table of ['filter', 'nat', 'mangle']) {
    let rules: string[];
    try {
      rules = sh('iptables', ['-t', table, '-S']).split('\n');
    } catch {
      continue;
    }
    for (const rule of rules.filter((r) => r.startsWith('-A ') && / -j KUBE-/.test(r) && !/^-A KUBE-/.test(r))) {
      trySh('iptables', [
        '-t',
        table,
        ...rule
          .replace(/^-A /, '-D ')
          .match(/(?:[^\s"]+|"[^"]*")+/g)!
          .map((a) => a.replace(/^"|"$/g, '')),
      ]);
    }
    const chains = rules.filter((r) => r.startsWith('-N KUBE-')).map((r) => r.slice(3));
    for (const c of chains) trySh('iptables', ['-t', table, '-F', c]);
    for (const c of chains) trySh('iptables', ['-t', table, '-X', c]);
  }
}
