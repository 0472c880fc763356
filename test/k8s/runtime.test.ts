// The kubernetes runtime against a real kube-apiserver (+ controller-manager, scheduler and
// KWOK nodes). KWOK runs nothing, so the tests play kubelet: they take a pod over from KWOK
// and patch its status (container terminated with an exit code, image pull errors, eviction).
import { k8s, type CoreV1Api, type V1Pod } from '../../activities/runtime/kubernetes/client';
import { ANNOTATIONS, CONTAINERS, LABELS, STREAMER_PORT, WORKDIR, anchorName, podName } from '../../activities/runtime/kubernetes/pod';
import { podArtifact } from '../../activities/runtime/kubernetes/artifact-ref';
import { StepDetached, StepErrored } from '../../activities/errors';
import { KubernetesRuntime } from '../../activities/runtime/kubernetes/runtime';
import type { StepOutcome } from '../../activities/runtime/kubernetes/task';
import type { RunTaskRequest } from '../../activities/types';
import type { TaskConfig, TaskStep } from '../../schemas/compiled';
import { FAKE_TASK_LOG } from './cluster';
import {
  adminCore,
  adminKubeConfig,
  freshNamespace,
  kubeletFinishDeletion,
  patchPodStatus,
  podGone,
  takeOverPod,
  terminated,
  uniqueBuildId,
  until,
  waitForPod,
} from './setup/env';

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

/** Waits until the pod exists and KWOK scheduled it, then takes it over from KWOK. */
async function podCreated(req: RunTaskRequest): Promise<V1Pod> {
  const name = nameOf(req);
  const pod = await waitForPod(core, namespace, name, (p) => !!p.spec?.nodeName, 'scheduling');
  await takeOverPod(core, namespace, name);
  return pod;
}

async function finishTask(req: RunTaskRequest, exitCode: number): Promise<void> {
  await patchPodStatus(core, namespace, nameOf(req), {
    phase: 'Running',
    containerStatuses: [
      { name: CONTAINERS.task, image: 'busybox:1.37', imageID: '', ready: false, restartCount: 0, state: terminated(exitCode) },
    ],
  });
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
    const run = rt.runStep(req);
    const pod = await podCreated(req);

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

    await finishTask(req, 0);
    const outcome = await run;
    expect(outcome).toMatchObject({ state: 'succeeded', exitCode: 0, reattached: false });
    expect(outcome.state !== 'aborted' && outcome.outputs).toEqual({ bin: podArtifact('k8s-test', pod.metadata!.name!, 'bin') });
  });

  test('a consumer pod fetches its input from the producer pod by IP', async () => {
    const rt = runtime();
    const buildId = uniqueBuildId();
    const producer = request({ buildId, config: config({ outputs: [{ name: 'out' }] }), step: { id: 'plan.0', task: 'produce' } });
    const produced = rt.runStep(producer);
    const producerPod = await podCreated(producer);
    await finishTask(producer, 0);
    const result = await produced;
    if (result.state === 'aborted') throw new Error('aborted');
    const ip = (await waitForPod(core, namespace, producerPod.metadata!.name!, (p) => !!p.status?.podIP, 'pod IP')).status!.podIP;

    const consumer = request({
      buildId,
      config: config({ inputs: [{ name: 'in', path: 'input' }] }),
      step: { id: 'plan.1', task: 'consume', inputMapping: { in: 'out' } },
      artifacts: result.outputs,
    });
    const consumed = rt.runStep(consumer);
    const consumerPod = await podCreated(consumer);
    const fetcher = consumerPod.spec!.initContainers![0];
    const inputs = JSON.parse(fetcher.env!.find((e) => e.name === 'CAUSEWAY_INPUTS')!.value!);
    expect(inputs).toEqual([{ name: 'in', path: 'input', url: `http://${ip}:${STREAMER_PORT}/artifacts/out` }]);
    await finishTask(consumer, 0);
    await expect(consumed).resolves.toMatchObject({ state: 'succeeded' });
  });
});

describe('watch-based completion', () => {
  test.each([0, 3])('exit code %i comes from the task container’s terminated state', async (code) => {
    const rt = runtime();
    const req = request();
    const run = rt.runStep(req);
    await podCreated(req);
    // a kubelet reports Running first, then the terminated container
    await patchPodStatus(core, namespace, nameOf(req), {
      phase: 'Running',
      containerStatuses: [
        {
          name: CONTAINERS.task,
          image: 'busybox',
          imageID: '',
          ready: true,
          restartCount: 0,
          state: { running: { startedAt: new Date().toISOString() } },
        },
      ],
    });
    await finishTask(req, code);
    const outcome = await run;
    expect(outcome).toMatchObject({ state: code === 0 ? 'succeeded' : 'failed', exitCode: code });
    // the informer, not polling: one GET (not found), one create, one list and one watch
    expect(rt.calls.list).toBe(1);
    expect(rt.calls.watch).toBe(1);
    expect(rt.calls.watchEvents).toBeGreaterThanOrEqual(2);
    // a pod without outputs is deleted once its task ended
    await podGone(core, namespace, nameOf(req));
  });

  test('the task container’s log is streamed, in order, with byte offsets', async () => {
    const rt = runtime();
    const req = request();
    const chunks: { data: string; offset: number }[] = [];
    const run = rt.runStep(req, { log: async (data, offset) => void chunks.push({ data: data.toString(), offset }) });
    // KWOK (as kubelet) starts the container; its log comes through the apiserver from KWOK's kubelet API
    await until(async () => chunks.map((c) => c.data).join('') === FAKE_TASK_LOG.map((l) => `${l}\n`).join(''), 'the task log');
    await takeOverPod(core, namespace, nameOf(req));
    await finishTask(req, 0);
    await expect(run).resolves.toMatchObject({ state: 'succeeded' });
    let expected = 0;
    for (const c of chunks) {
      expect(c.offset).toBe(expected);
      expected += Buffer.byteLength(c.data);
    }
    // The follow, and a plain read of the ended container's log: KWOK never ends a followed log, a kubelet does (then one read).
    expect(rt.calls.log).toBe(2);
  });

  test('a log stream that has not ended when the container has is completed by one plain read: no line is lost', async () => {
    // A worker re-attaching to a pod whose task has ended starts reading its log only then; the
    // drain's bound expires at once here, as it can at load, before the followed log arrives. The
    // pod has an output, so it stays (no deletion to wait for before the step's last read).
    const req = request({ config: { outputs: [{ name: 'out' }] } });
    const detach = new AbortController();
    const first = runtime().runStep(req, { detach: detach.signal });
    await podCreated(req);
    detach.abort();
    await expect(first).rejects.toBeInstanceOf(StepDetached);
    await finishTask(req, 0);
    const chunks: { data: string; offset: number }[] = [];
    const second = runtime({ logDrainMs: 1 }).runStep(req, {
      log: async (data, offset) => void chunks.push({ data: data.toString(), offset }),
    });
    await expect(second).resolves.toMatchObject({ state: 'succeeded', reattached: true });
    expect(chunks.map((c) => c.data).join('')).toBe(FAKE_TASK_LOG.map((l) => `${l}\n`).join(''));
    let expected = 0;
    for (const c of chunks) {
      expect(c.offset).toBe(expected);
      expected += Buffer.byteLength(c.data);
    }
  });

  test('a watch that ends (server timeout) is resumed from its resourceVersion', async () => {
    const rt = runtime({ watchTimeoutSeconds: 1 });
    const req = request();
    const run = rt.runStep(req);
    await podCreated(req);
    await new Promise((r) => setTimeout(r, 2500));
    await finishTask(req, 0);
    await expect(run).resolves.toMatchObject({ state: 'succeeded' });
    expect(rt.calls.watch).toBeGreaterThanOrEqual(2);
    expect(rt.calls.list).toBe(1);
  });
});

describe('abort and retry', () => {
  test('abort deletes the pod with the grace period', async () => {
    const rt = runtime({ graceSeconds: 7 });
    const req = request();
    const abort = new AbortController();
    const notes: string[] = [];
    const run = rt.runStep(req, { abort: abort.signal, note: (t) => notes.push(t) });
    await waitForPod(core, namespace, nameOf(req), (p) => !!p.spec?.nodeName, 'scheduling');
    abort.abort();
    await expect(run).resolves.toMatchObject({ state: 'aborted' });
    expect(notes.join('\n')).toMatch(/grace period 7s/);
    // deleted: KWOK (as a kubelet) finishes the graceful deletion
    await podGone(core, namespace, nameOf(req));
  });

  test('a retried activity re-attaches to the pod its previous attempt created', async () => {
    const req = request();
    const detach = new AbortController();
    const first = runtime().runStep(req, { detach: detach.signal });
    const pod = await podCreated(req);
    detach.abort(); // the worker shuts down: the pod must survive
    await expect(first).rejects.toBeInstanceOf(StepDetached);
    const still = await core.readNamespacedPod({ name: nameOf(req), namespace });
    expect(still.metadata?.uid).toBe(pod.metadata?.uid);
    expect(still.metadata?.deletionTimestamp).toBeUndefined();

    const rt2 = runtime();
    const second = rt2.runStep(req);
    await until(async () => rt2.calls.watch > 0, 'second watch');
    await finishTask(req, 5);
    const outcome: StepOutcome = await second;
    expect(outcome).toMatchObject({ state: 'failed', exitCode: 5, reattached: true, pod: nameOf(req) });
    expect(rt2.calls.create).toBe(0);
    const pods = await core.listNamespacedPod({ namespace, labelSelector: `${LABELS.build}=${req.buildId}` });
    expect(pods.items.filter((p) => !p.metadata?.deletionTimestamp).length).toBeLessThanOrEqual(1);
  });
});

describe('errors end the step errored with Kubernetes’ reason', () => {
  test('image pull error', async () => {
    const rt = runtime();
    const req = request({
      config: config({ image_resource: { type: 'registry-image', source: { repository: 'registry.invalid/nope', tag: 'x' } } }),
    });
    const run = rt.runStep(req);
    await podCreated(req);
    await patchPodStatus(core, namespace, nameOf(req), {
      phase: 'Pending',
      containerStatuses: [
        {
          name: CONTAINERS.task,
          image: 'registry.invalid/nope:x',
          imageID: '',
          ready: false,
          restartCount: 0,
          state: { waiting: { reason: 'ErrImagePull', message: 'failed to resolve reference "registry.invalid/nope:x"' } },
        },
      ],
    });
    await expect(run).rejects.toThrow(/ErrImagePull: failed to resolve reference/);
    await expect(run).rejects.toBeInstanceOf(StepErrored);
  });

  test('unschedulable: the scheduler’s message', async () => {
    const rt = runtime({ unschedulableGraceMs: 500 });
    const req = request({ step: { tags: ['no-such-node'] } });
    await expect(rt.runStep(req)).rejects.toThrow(
      /unschedulable: 0\/2 nodes are available: .*node\(s\) didn't match Pod's node affinity\/selector/,
    );
  });

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

describe('cleanup', () => {
  test('deleting the build’s anchor cascades to its pods and secret (garbage collector)', async () => {
    const rt = runtime();
    const req = request({ config: config({ outputs: [{ name: 'keep' }] }) });
    const run = rt.runStep(req);
    await podCreated(req);
    await finishTask(req, 0);
    await run;
    // a producer pod stays for its consumers
    const kept = await core.readNamespacedPod({ name: nameOf(req), namespace });
    expect(kept.metadata?.deletionTimestamp).toBeUndefined();

    expect(await rt.deleteBuild(req.buildId)).toBe(true);
    // the garbage collector asks for the pod's deletion; the test, as its kubelet, completes it
    await kubeletFinishDeletion(core, namespace, nameOf(req));
    await until(
      async () => {
        try {
          await core.readNamespacedSecret({ name: `${anchorName(req.buildId)}-token`, namespace });
          return false;
        } catch (err) {
          return (err as { code?: number }).code === 404;
        }
      },
      'token secret deletion',
      60_000,
    );
    expect(await rt.deleteBuild(req.buildId)).toBe(false);
  });
});
