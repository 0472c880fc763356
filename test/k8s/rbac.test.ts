// deploy/worker's ServiceAccount, Role and RoleBinding applied to a real apiserver; then the
// runtime runs steps with that service account's token only. A verb missing from the Role
// fails here; a verb the runtime does not need is caught by the "no more than" checks.
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { k8s, type CoreV1Api } from '../../activities/runtime/kubernetes/client';
import { CONTAINERS, TOKEN_KEY, podName, tokenSecretName } from '../../activities/runtime/kubernetes/pod';
import { serviceReadiness } from '../../activities/runtime/kubernetes/pod-status';
import { followPod } from '../../activities/runtime/kubernetes/pod-watcher';
import { startService, stopService } from '../../activities/runtime/kubernetes/service';
import { serviceObjectName } from '../../activities/runtime/kubernetes/service-pod';
import { KubernetesRuntime } from '../../activities/runtime/kubernetes/runtime';
import type { RunTaskRequest } from '../../activities/types';
import { FAKE_TASK_LOG, kubeconfigYaml } from './cluster';
import { trueTaskStep } from './task-step';
import {
  adminCore,
  adminKubeConfig,
  freshNamespace,
  kubeletFinishDeletion,
  patchPodStatus,
  podGone,
  takeOverPod,
  terminated,
  testCluster,
  uniqueBuildId,
  until,
  waitForPod,
} from './setup/env';

const DEPLOY = path.join(__dirname, '..', '..', 'deploy', 'worker');
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const load = (file: string): any => YAML.parse(fs.readFileSync(path.join(DEPLOY, file), 'utf8'));

let core: CoreV1Api;
let namespace: string;
let token: string;

beforeAll(async () => {
  core = adminCore();
  namespace = await freshNamespace(core, 'rbac');
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
  token = tr.status!.token;
});

function workerKubeConfig() {
  const cluster = testCluster();
  const file = path.join(cluster.dir, `worker-${namespace}.kubeconfig`);
  fs.writeFileSync(file, kubeconfigYaml(cluster.server, cluster.caFile, { token }, 'worker'));
  return file;
}

function request(outputs: boolean): RunTaskRequest {
  return {
    buildId: uniqueBuildId(),
    runId: 'run-1',
    plan: 'rbac',
    runKey: '1',
    attempt: 1,
    artifacts: {},
    step: { ...trueTaskStep(0, outputs ? ['out'] : []), task: 'rbac' },
  };
}

const nameOf = (req: RunTaskRequest) => podName(req.buildId, req.runId, req.step.id, req.runKey, req.step.task);

test('the worker Role is enough: create, watch to completion, abort, build cleanup', async () => {
  const rt = new KubernetesRuntime({ namespace, worker: 'rbac', kubeconfig: workerKubeConfig(), graceSeconds: 1, logDrainMs: 1000 });

  // a step that runs to completion (and a pod without outputs is deleted after it)
  const done = request(false);
  let log = '';
  const run = rt.runStep(done, { log: async (data) => void (log += data.toString()) });
  await waitForPod(core, namespace, nameOf(done), (p) => !!p.spec?.nodeName);
  // pods/log: the container's log reaches the runtime with the worker's token
  await until(async () => log.includes(FAKE_TASK_LOG[0]), 'the task log through pods/log');
  await takeOverPod(core, namespace, nameOf(done));
  await patchPodStatus(core, namespace, nameOf(done), {
    phase: 'Running',
    containerStatuses: [{ name: CONTAINERS.task, image: 'busybox', imageID: '', ready: false, restartCount: 0, state: terminated(0) }],
  });
  await expect(run).resolves.toMatchObject({ state: 'succeeded', exitCode: 0 });
  await podGone(core, namespace, nameOf(done));

  // abort deletes
  const aborted = request(false);
  const abort = new AbortController();
  const run2 = rt.runStep(aborted, { abort: abort.signal });
  await waitForPod(core, namespace, nameOf(aborted), (p) => !!p.spec?.nodeName);
  abort.abort();
  await expect(run2).resolves.toMatchObject({ state: 'aborted' });

  // a kept producer pod, re-attached by a second runtime, then removed with its build
  const kept = request(true);
  const run3 = rt.runStep(kept);
  await waitForPod(core, namespace, nameOf(kept), (p) => !!p.spec?.nodeName);
  await takeOverPod(core, namespace, nameOf(kept));
  await patchPodStatus(core, namespace, nameOf(kept), {
    phase: 'Running',
    containerStatuses: [{ name: CONTAINERS.task, image: 'busybox', imageID: '', ready: false, restartCount: 0, state: terminated(0) }],
  });
  await expect(run3).resolves.toMatchObject({ state: 'succeeded' });
  await expect(rt.runStep(kept)).resolves.toMatchObject({ state: 'succeeded', reattached: true });
  // a restarted worker reads the build's artifact token back from its Secret (secrets get)
  const restarted = new KubernetesRuntime({ namespace, worker: 'rbac', kubeconfig: workerKubeConfig() });
  const secret = await core.readNamespacedSecret({ name: tokenSecretName(kept.buildId), namespace });
  expect(await restarted.buildToken(kept.buildId)).toBe(Buffer.from(secret.data![TOKEN_KEY], 'base64').toString('utf8'));
  expect(await rt.deleteBuild(kept.buildId)).toBe(true);
  await kubeletFinishDeletion(core, namespace, nameOf(kept));
  // the pod informer's list: once, its watch resumed from there
  expect(rt.calls.list).toBe(1);

  // a service: pod, Service and the build's NetworkPolicy, then stopped
  const svc = {
    buildId: kept.buildId + '-svc',
    runId: 'run-1',
    scopeStepId: 'plan.0',
    runKey: '1',
    name: 'db',
    plan: 'rbac',
    spec: {
      name: 'db',
      config: {
        image_resource: { type: 'registry-image', source: { repository: 'postgres', tag: '17' } },
        inputs: [],
        params: {},
        run: { path: 'postgres', args: [] },
        ports: [{ name: 'default', number: 5432 }],
      },
      params: {},
      inputMapping: {},
      gracePeriodMs: 0,
    },
    address: { name: 'db', host: '127.1.1.1', ports: {} },
    scope: {},
    siblings: ['db'],
    artifacts: {},
  };
  await startService(rt, svc);
  await expect(followPod(rt, serviceObjectName(svc), (p) => serviceReadiness(p, 'db'))).resolves.toEqual({ ready: true });
  await stopService(rt, svc, 0);
  expect(await rt.deleteBuild(svc.buildId)).toBe(true);
});

test('and no more than that: the worker cannot list or watch secrets, or reach other namespaces', async () => {
  const kc = new (k8s().KubeConfig)();
  kc.loadFromFile(workerKubeConfig());
  const auth = kc.makeApiClient(k8s().AuthorizationV1Api);
  const can = async (verb: string, resource: string, ns = namespace, subresource?: string) =>
    (await auth.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: { namespace: ns, verb, resource, subresource } } } }))
      .status?.allowed;
  expect(await can('create', 'pods')).toBe(true);
  expect(await can('create', 'services')).toBe(true);
  expect(await can('create', 'networkpolicies', namespace)).toBe(false); // group-qualified below
  expect(
    (
      await auth.createSelfSubjectAccessReview({
        body: { spec: { resourceAttributes: { namespace, verb: 'create', group: 'networking.k8s.io', resource: 'networkpolicies' } } },
      })
    ).status?.allowed,
  ).toBe(true);
  expect(await can('update', 'services')).toBe(false);
  expect(await can('watch', 'pods')).toBe(true);
  expect(await can('list', 'pods')).toBe(true); // the pod informer, label-selected
  expect(await can('list', 'configmaps')).toBe(true); // the reconciler's pass over anchors
  expect(await can('update', 'pods')).toBe(false);
  expect(await can('get', 'pods', namespace, 'log')).toBe(true);
  // get by name (a build's token, after a restart) adds nothing to creating pods, which can
  // mount any Secret here; listing or watching them all stays forbidden
  expect(await can('get', 'secrets')).toBe(true);
  expect(await can('list', 'secrets')).toBe(false);
  expect(await can('watch', 'secrets')).toBe(false);
  expect(await can('update', 'secrets')).toBe(false);
  expect(await can('create', 'pods', 'default')).toBe(false);
  expect(await can('create', 'pods', namespace, 'exec')).toBe(false);
});
