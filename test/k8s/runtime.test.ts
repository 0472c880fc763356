// The kubernetes runtime against a real kube-apiserver (+ controller-manager, scheduler and
// KWOK nodes), for what needs the API server only or a fake node: the pod as the apiserver stores
// and defaults it, scheduled by the real scheduler among two nodes of which one carries a tag; an
// eviction (a real node evicts only under memory or disk pressure, which a test cannot cause
// here without starving the machine); an API server that does not answer; options the runtime
// refuses before any call. Everything a kubelet does (exit codes, logs, SIGTERM on abort,
// re-attach, image pulls, unschedulable, the garbage collector's cascade) runs on a real
// container in test/k8s/node/runtime.test.ts.
import { k8s, type CoreV1Api, type V1Pod } from '../../activities/runtime/kubernetes/client';
import { ANNOTATIONS, CONTAINERS, LABELS, STREAMER_PORT, WORKDIR, anchorName, podName } from '../../activities/runtime/kubernetes/pod';
import { StepDetached } from '../../activities/errors';
import { KubernetesRuntime } from '../../activities/runtime/kubernetes/runtime';
import type { RunTaskRequest } from '../../activities/types';
import type { TaskConfig, TaskStep } from '../../schemas/compiled';
import { adminCore, adminKubeConfig, freshNamespace, patchPodStatus, takeOverPod, uniqueBuildId, waitForPod } from './setup/env';

let core: CoreV1Api;
let namespace: string;

beforeAll(async () => {
  core = adminCore();
  namespace = await freshNamespace(core);
});

const config = (over: Partial<TaskConfig> = {}): TaskConfig => ({
  image_resource: { type: 'registry-image', source: { repository: 'docker.io/library/busybox', tag: '1.37' } },
  inputs: [],
  outputs: [],
  caches: [],
  params: {},
  run: { path: 'sh', args: ['-c', 'echo hello'] },
  ...over,
});

function request(
  over: {
    step?: Partial<TaskStep>;
    config?: Partial<TaskConfig>;
    buildId?: string;
    runKey?: string;
    artifacts?: RunTaskRequest['artifacts'];
  } = {},
): RunTaskRequest {
  const step: TaskStep = {
    kind: 'task',
    id: 'plan.0',
    task: 'unit',
    params: {},
    vars: {},
    inputMapping: {},
    outputMapping: {},
    privileged: false,
    config: config(over.config),
    ...over.step,
  };
  return {
    buildId: over.buildId ?? uniqueBuildId(),
    runId: 'run-1',
    plan: 'test',
    step,
    runKey: over.runKey ?? '1',
    attempt: 1,
    artifacts: over.artifacts ?? {},
  };
}

function runtime(over: Partial<ConstructorParameters<typeof KubernetesRuntime>[0]> = {}): KubernetesRuntime {
  return new KubernetesRuntime({
    namespace,
    worker: 'k8s-test',
    kubeConfig: adminKubeConfig(),
    graceSeconds: 1,
    logDrainMs: 1000,
    ...over,
  });
}

const nameOf = (req: RunTaskRequest) => podName(req.buildId, req.runId, req.step.id, req.runKey, req.step.task);

/** Waits until the pod exists and KWOK scheduled it, then takes it over from KWOK (to evict it). */
async function podCreated(req: RunTaskRequest): Promise<V1Pod> {
  const name = nameOf(req);
  const pod = await waitForPod(core, namespace, name, (p) => !!p.spec?.nodeName, 'scheduling');
  await takeOverPod(core, namespace, name);
  return pod;
}

describe('pod spec on the server', () => {
  test('every task option lands in the pod the apiserver stores, and the scheduler honours tags', async () => {
    const rt = runtime();
    const req = request({
      config: config({
        params: { GREETING: 'hi', JSON: '{"a":1}' },
        run: { path: '/bin/sh', args: ['-ec', 'make'], dir: 'src', user: '1000' },
        container_limits: { cpu: 512, memory: 64 * 1024 * 1024 },
        outputs: [{ name: 'bin' }],
        caches: [{ path: 'cache' }],
      }),
      step: { id: 'plan.1', task: 'build', params: { EXTRA: 'x' }, privileged: true, tags: ['gpu'] },
    });
    // The pod as stored is what this test checks: the step is left running (detached), and its
    // build's objects go with its anchor.
    const detach = new AbortController();
    const run = rt.runStep(req, { detach: detach.signal });
    const pod = await waitForPod(core, namespace, nameOf(req), (p) => !!p.spec?.nodeName, 'scheduling');

    expect(pod.metadata?.labels).toMatchObject({ [LABELS.build]: req.buildId, [LABELS.step]: 'plan.1', [LABELS.worker]: 'k8s-test' });
    expect(pod.metadata?.annotations?.[ANNOTATIONS.runKey]).toBe('1');
    const anchor = await core.readNamespacedConfigMap({ name: anchorName(req.buildId), namespace });
    expect(pod.metadata?.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'ConfigMap', name: anchor.metadata?.name, uid: anchor.metadata?.uid }),
    ]);
    expect(pod.spec?.restartPolicy).toBe('Never');
    expect(pod.spec?.automountServiceAccountToken).toBe(false);
    // tags → nodeSelector, and the real scheduler put it on the only node with that label
    expect(pod.spec?.nodeSelector).toEqual({ 'causeway.dev/tag-gpu': 'true' });
    expect(pod.spec?.nodeName).toBe('kwok-node-1');

    const task = pod.spec!.containers.find((c) => c.name === CONTAINERS.task)!;
    expect(task.image).toBe('docker.io/library/busybox:1.37');
    expect(task.command).toEqual(['/bin/sh']);
    expect(task.args).toEqual(['-ec', 'make']);
    expect(task.workingDir).toBe(`${WORKDIR}/src`);
    expect(task.env).toEqual([
      { name: 'EXTRA', value: 'x' },
      { name: 'GREETING', value: 'hi' },
      { name: 'JSON', value: '{"a":1}' },
    ]);
    expect(task.resources).toEqual({
      limits: { cpu: '500m', memory: String(64 * 1024 * 1024) },
      requests: { cpu: '500m', memory: String(64 * 1024 * 1024) },
    });
    expect(task.securityContext).toEqual({ privileged: true, allowPrivilegeEscalation: true, runAsUser: 1000 });
    expect(pod.status?.qosClass).toBe('Burstable'); // the agent containers have smaller requests

    expect(pod.spec!.initContainers!.map((c) => c.name)).toEqual([CONTAINERS.fetcher]);
    const streamer = pod.spec!.containers.find((c) => c.name === CONTAINERS.streamer)!;
    expect(streamer.ports?.[0].containerPort).toBe(STREAMER_PORT);
    expect(streamer.env?.find((e) => e.name === 'CAUSEWAY_ARTIFACT_TOKEN')?.valueFrom?.secretKeyRef?.name).toBe(
      `${anchorName(req.buildId)}-token`,
    );
    const secret = await core.readNamespacedSecret({ name: `${anchorName(req.buildId)}-token`, namespace });
    expect(secret.metadata?.ownerReferences?.[0].uid).toBe(anchor.metadata?.uid);

    expect(pod.metadata?.annotations?.[ANNOTATIONS.outputs]).toBe(JSON.stringify([{ name: 'bin', path: 'bin' }]));

    detach.abort();
    await expect(run).rejects.toBeInstanceOf(StepDetached);
    expect(await rt.deleteBuild(req.buildId)).toBe(true);
  });
});

describe('errors end the step errored with Kubernetes’ reason', () => {
  test('evicted', async () => {
    const rt = runtime();
    const req = request();
    const run = rt.runStep(req);
    await podCreated(req);
    await patchPodStatus(core, namespace, nameOf(req), {
      phase: 'Failed',
      reason: 'Evicted',
      message: 'The node was low on resource: memory.',
    });
    await expect(run).rejects.toThrow(/Evicted: The node was low on resource: memory/);
  });

  test('API server unreachable', async () => {
    const kc = new (k8s().KubeConfig)();
    kc.loadFromOptions({
      clusters: [{ name: 'gone', server: 'https://127.0.0.1:1', skipTLSVerify: true }],
      users: [{ name: 'u', token: 'x' }],
      contexts: [{ name: 'gone', cluster: 'gone', user: 'u' }],
      currentContext: 'gone',
    });
    const rt = new KubernetesRuntime({ namespace, worker: 'k8s-test', kubeConfig: kc, apiUnreachableMs: 1000 });
    await expect(rt.runStep(request())).rejects.toThrow(/Kubernetes API server unreachable .*: /);
  });

  test('a task option the runtime cannot honour', async () => {
    const rt = runtime();
    await expect(rt.runStep(request({ config: config({ run: { path: 'id', args: [], user: 'postgres' } }) }))).rejects.toThrow(
      /numeric user id/,
    );
    await expect(rt.runStep(request({ config: config({ image_resource: undefined }) }))).rejects.toThrow(/no image/);
  });
});
