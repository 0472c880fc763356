// The worker inside the cluster, from deploy/ (deploy/dev-node on top of deploy/worker):
// the worker image pulled from the node's registry, running as a Deployment with its own
// ServiceAccount and least-privilege Role, reaching the dev stack's Temporal and NATS on the
// host (hostNetwork), and running a build of `causeway run` end to end: an upload from the CLI
// fetched by a step pod from the worker's upload server, an output moving pod to pod, an export.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import type { CoreV1Api } from '../../../activities/runtime/kubernetes/client';
import { LABELS } from '../../../activities/runtime/kubernetes/pod';
import { readState } from '../../../cli/dev/state';
import { adminCore, freshNamespace, testCluster, until } from '../setup/env';

jest.setTimeout(900_000);

const ROOT = path.resolve(__dirname, '../../..');
const BIN = path.join(ROOT, 'bin', 'causeway');
const WORKER = 'k8s-causeway';
/** A task queue of its own, so the build is this worker's, not the dev stack's k8s-dev's. */
const QUEUE = `causeway-in-cluster-${process.pid}`;

let core: CoreV1Api;
let namespace: string;
let dir: string;
let kubectl: string;
/** step pods seen in the worker's namespace while the build ran, with their worker label */
const stepPods = new Map<string, string | undefined>();

function home(): string {
  const h = process.env.CAUSEWAY_TEST_DEV_HOME;
  if (!h) throw new Error('CAUSEWAY_TEST_DEV_HOME is not set: run through the jest "k8s-node" project');
  return h;
}

function kube(args: string[]): string {
  return execFileSync(kubectl, args, { encoding: 'utf8', env: { ...process.env, KUBECONFIG: testCluster().kubeconfig } });
}

function cli(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, {
      cwd: dir,
      env: { ...process.env, CAUSEWAY_HOME: home(), CAUSEWAY_TASK_QUEUE: QUEUE, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
  });
}

beforeAll(async () => {
  core = adminCore();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-k8s-deploy-'));
  kubectl = path.join(
    /CAUSEWAY_K8S_NODE_BIN="?([^"\s]+)/.exec(
      execFileSync('bash', [path.join(ROOT, 'scripts/k8s/provision.sh'), '--node'], { encoding: 'utf8' }),
    )![1],
    'kubectl',
  );
  const node = testCluster().node!;
  const stack = readState(home())!;
  // The worker image carries dist/: built (or found cached) and pushed now.
  const pushed = execFileSync('bash', [path.join(ROOT, 'scripts/images/build.sh'), '--push', node.registry, 'worker'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const workerImage = pushed.trim().split(' ')[1];
  const [workerName, workerTag] = workerImage.split(/:(?=[^:]+$)/);

  namespace = await freshNamespace(core, 'node-deploy');
  // What deploy/dev-node's comment says to create: the codec keys and the worker's NATS seed.
  const secret = (name: string, key: string, file: string) =>
    core.createNamespacedSecret({
      namespace,
      body: { metadata: { name }, data: { [key]: fs.readFileSync(file).toString('base64') } },
    });
  await secret('causeway-codec', 'keys.json', path.join(home(), 'codec-keys.json'));
  await secret('causeway-nats-nkey', 'worker.nk', path.join(home(), 'nats-auth', 'worker.nk'));

  // The test's own kustomization over deploy/dev-node: its namespace, the images of the node's
  // registry, the dev stack's ports (free ones here) and the test's task queue.
  const patch = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'causeway-worker' },
    spec: {
      template: {
        spec: {
          containers: [
            {
              name: 'worker',
              env: [
                { name: 'TEMPORAL_ADDRESS', value: stack.temporal.address },
                { name: 'NATS_URL', value: stack.nats.url },
                { name: 'CAUSEWAY_AGENT_IMAGE', value: node.images.agent },
                { name: 'CAUSEWAY_TASK_QUEUE', value: QUEUE },
              ],
            },
          ],
        },
      },
    },
  };
  fs.writeFileSync(path.join(dir, 'patch.yaml'), YAML.stringify(patch));
  fs.writeFileSync(
    path.join(dir, 'kustomization.yaml'),
    YAML.stringify({
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      namespace,
      // kustomize takes no absolute path
      resources: [path.relative(dir, path.join(ROOT, 'deploy', 'dev-node'))],
      images: [{ name: 'ghcr.io/causeway-ci/causeway', newName: workerName, newTag: workerTag }],
      patches: [{ path: 'patch.yaml' }],
    }),
  );
  kube(['apply', '-k', dir]);
  await until(
    async () => {
      const pods = await core.listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/name=causeway-worker' });
      const ready = pods.items.find((p) => p.status?.containerStatuses?.[0]?.ready);
      return ready ?? false;
    },
    `the worker pod of deploy/dev-node ready in ${namespace}`,
    600_000,
  );
});

afterAll(async () => {
  if (namespace) {
    // A failed run says why the worker did what it did.
    try {
      process.stderr.write(kube(['-n', namespace, 'logs', 'deploy/causeway-worker', '--tail', '40']));
    } catch {
      // no worker pod to read
    }
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the worker of deploy/ runs inside the cluster and runs a build of causeway run end to end', async () => {
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'hello.txt'), 'hello from the CLI\n');
  const busybox = `{type: registry-image, source: {repository: busybox}}`;
  fs.writeFileSync(
    path.join(dir, 'plan.yml'),
    `
plan:
- task: make
  config:
    platform: linux
    image_resource: ${busybox}
    inputs: [{name: src}]
    outputs: [{name: out}]
    run: {path: sh, args: [-c, 'sed "s/CLI/CLI, via a pod/" src/hello.txt > out/greeting; echo made']}
- task: read
  config:
    platform: linux
    image_resource: ${busybox}
    inputs: [{name: out}]
    run: {path: sh, args: [-c, 'echo "read: $(cat out/greeting)"']}
`,
  );
  const watching = setInterval(() => {
    void core
      .listNamespacedPod({ namespace, labelSelector: 'app.kubernetes.io/managed-by=causeway' })
      .then((l) => l.items.forEach((p) => stepPods.set(p.metadata!.name!, p.metadata?.labels?.[LABELS.worker])))
      .catch(() => undefined);
  }, 200);
  const exported = path.join(dir, 'exported');
  const r = await cli(['run', path.join(dir, 'plan.yml'), '-i', `src=${src}`, '-o', `out=${exported}`]).finally(() =>
    clearInterval(watching),
  );
  expect({ code: r.code, out: r.out }).toEqual({ code: 0, out: expect.stringContaining('read: hello from the CLI, via a pod') });
  expect(fs.readFileSync(path.join(exported, 'greeting'), 'utf8')).toBe('hello from the CLI, via a pod\n');
  // Both steps were pods of the in-cluster worker, in its namespace.
  expect([...stepPods.keys()].filter((n) => n.startsWith('cw-make-') || n.startsWith('cw-read-')).length).toBeGreaterThanOrEqual(2);
  expect(new Set(stepPods.values())).toEqual(new Set([WORKER]));
});
