// deploy/worker's ServiceAccount, Role and RoleBinding on the real node: a kubernetes worker
// holding only that service account's token runs a whole build of real pods (a producer, a
// consumer reading its output through the agents, a service reached by its Service name, the
// task's log read through the kubelet), and, step by step, aborts a real container, re-attaches
// to a kept producer pod, reads the build's token back after a restart and deletes the build;
// the token cannot list secrets or leave its namespace. test/k8s/rbac.test.ts asks the API
// server about each verb (an access review); this is the same Role end to end.
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { k8s, type CoreV1Api, type KubeConfig } from '../../../activities/runtime/kubernetes/client';
import { TOKEN_KEY, podName, tokenSecretName } from '../../../activities/runtime/kubernetes/pod';
import { KubernetesRuntime } from '../../../activities/runtime/kubernetes/runtime';
import type { RunTaskRequest } from '../../../activities/types';
import { awaitBuild, startBuild } from '../../../common/build-client';
import { collectLogs } from '../../../common/build-log';
import { kubeconfigYaml } from '../../../cli/dev/k8s/cluster';
import { compilePlan } from '../../../schemas';
import { startBuildEnv, type BuildEnv } from '../setup/builds';
import { adminCore, adminKubeConfig, freshNamespace, podGone, testCluster, uniqueBuildId, until } from '../setup/env';
import { trueTaskStep } from '../task-step';

jest.setTimeout(300_000);

const DEPLOY = path.join(__dirname, '..', '..', '..', 'deploy', 'worker');
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const load = (file: string): any => YAML.parse(fs.readFileSync(path.join(DEPLOY, file), 'utf8'));

let core: CoreV1Api;
let namespace: string;
let workerKc: KubeConfig;
let env: BuildEnv | undefined;

beforeAll(async () => {
  core = adminCore();
  namespace = await freshNamespace(core, 'node-rbac');
  const rbac = adminKubeConfig().makeApiClient(k8s().RbacAuthorizationV1Api);
  const sa = load('serviceaccount.yaml');
  await core.createNamespacedServiceAccount({ namespace, body: sa });
  await rbac.createNamespacedRole({ namespace, body: load('role.yaml') });
  await rbac.createNamespacedRoleBinding({ namespace, body: load('rolebinding.yaml') });
  const tr = await core.createNamespacedServiceAccountToken({
    name: sa.metadata.name,
    namespace,
    body: { spec: { expirationSeconds: 3600, audiences: [] } },
  });
  const cluster = testCluster();
  const file = path.join(cluster.dir, `worker-${namespace}.kubeconfig`);
  fs.writeFileSync(file, kubeconfigYaml(cluster.server, cluster.caFile, { token: tr.status!.token }, 'worker'));
  workerKc = new (k8s().KubeConfig)();
  workerKc.loadFromFile(file);
});

afterAll(async () => {
  await env?.stop();
  await core?.deleteNamespace({ name: namespace }).catch(() => undefined);
});

test('a worker with only deploy/worker’s token runs producer → consumer and a service on real pods', async () => {
  const { images } = testCluster().node!;
  env = await startBuildEnv('k8s-node-rbac', {
    kubernetes: { namespace, kubeConfig: workerKc, defaultImage: images.task, agentImage: images.agent, graceSeconds: 2 },
  });
  const [repository, tag] = images.task.split(/:(?=[^:]+$)/);
  const plan = compilePlan({
    file: 'rbac.yml',
    text: `
plan:
- task: produce
  config:
    platform: linux
    outputs: [{name: out}]
    run: {path: sh, args: [-c, 'echo from-producer > out/f']}
- task: consume
  services:
  - name: web
    config:
      image_resource: {type: registry-image, source: {repository: "${repository}", tag: "${tag}"}}
      run: {path: sh, args: [-c, 'mkdir -p /tmp/s && echo from-service > /tmp/s/index.html && exec python3 -m http.server 8080 -d /tmp/s']}
      ports: [8080]
  config:
    platform: linux
    inputs: [{name: out}]
    run:
      path: sh
      args: [-c, 'cat out/f; python3 -c "import os, urllib.request; print(urllib.request.urlopen(\\"http://%s:8080/\\" % os.environ[\\"WEB_SERVICE_HOST\\"], timeout=10).read().decode().strip())"']
`,
  });
  const handle = await startBuild(env.client, { plan, taskQueue: env.taskQueue });
  expect(await awaitBuild(handle)).toMatchObject({ status: 'succeeded' });
  const logs = [...(await collectLogs(env.nc, handle.workflowId)).values()].join('');
  expect(logs).toContain('from-producer\nfrom-service\n');
});

test('with the token only, step by step: abort a running container, re-attach to a kept producer, read the build’s token back after a restart, delete the build', async () => {
  const { images } = testCluster().node!;
  const runtime = () =>
    new KubernetesRuntime({
      namespace,
      worker: 'node-rbac',
      kubeConfig: workerKc,
      agentImage: images.agent,
      graceSeconds: 1,
      logDrainMs: 1000,
    });
  const request = (script: string, outputs: string[]): RunTaskRequest => ({
    buildId: uniqueBuildId(),
    runId: 'run-1',
    plan: 'rbac',
    runKey: '1',
    attempt: 1,
    artifacts: {},
    step: trueTaskStep(0, outputs, { image: images.busybox, script, task: 'rbac' }),
  });
  const nameOf = (req: RunTaskRequest) => podName(req.buildId, req.runId, req.step.id, req.runKey, req.step.task);
  const rt = runtime();

  // abort: the pod deleted with its grace period (pods delete)
  const aborted = request('echo waiting; while true; do sleep 0.2; done', []);
  const abort = new AbortController();
  let log = '';
  const running = rt.runStep(aborted, { abort: abort.signal, log: async (d) => void (log += d.toString()) });
  await until(async () => log.includes('waiting'), 'the task running', 120_000);
  abort.abort();
  await expect(running).resolves.toMatchObject({ state: 'aborted' });
  await podGone(core, namespace, nameOf(aborted), 60_000);

  // a kept producer pod, re-attached by a second run
  const kept = request('echo kept > out/f', ['out']);
  await expect(rt.runStep(kept)).resolves.toMatchObject({ state: 'succeeded', reattached: false });
  await expect(rt.runStep(kept)).resolves.toMatchObject({ state: 'succeeded', reattached: true });
  // a restarted worker reads the build's artifact token back from its Secret (secrets get)
  const secret = await core.readNamespacedSecret({ name: tokenSecretName(kept.buildId), namespace });
  expect(await runtime().buildToken(kept.buildId)).toBe(Buffer.from(secret.data![TOKEN_KEY], 'base64').toString('utf8'));
  // the anchor's deletion (configmaps delete) takes the pod, which the kubelet stops
  expect(await rt.deleteBuild(kept.buildId)).toBe(true);
  await podGone(core, namespace, nameOf(kept), 60_000);
  // the pod informer's list: once, its watch resumed from there
  expect(rt.calls.list).toBe(1);
});

test('the worker’s token cannot list secrets, or touch another namespace', async () => {
  const workerCore = workerKc.makeApiClient(k8s().CoreV1Api);
  const refused = async (call: () => Promise<unknown>) => {
    const err = await call().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as { code?: number } | undefined)?.code).toBe(403);
  };
  await refused(() => workerCore.listNamespacedSecret({ namespace }));
  await refused(() => workerCore.listNamespacedPod({ namespace: 'kube-system' }));
  await refused(() =>
    workerCore.createNamespacedPod({
      namespace: 'default',
      body: { metadata: { name: 'nope' }, spec: { containers: [{ name: 'c', image: testCluster().node!.images.task }] } },
    }),
  );
});
