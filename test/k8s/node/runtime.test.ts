// The kubernetes runtime's step API (KubernetesRuntime.runStep) on the real node: every pod runs
// a real container, so exit codes come from a real process, the log from the kubelet, SIGTERM
// from the kubelet on abort, image pull errors from the node's registry, and a deleted build's
// pods are stopped by the kubelet after the garbage collector's cascade. These were KWOK tests
// that patched pod status to play the kubelet (test/k8s/runtime.test.ts keeps what needs a fake
// node or only the API server).
import type { CoreV1Api, V1Pod } from '../../../activities/runtime/kubernetes/client';
import { CONTAINERS, LABELS, STREAMER_PORT, anchorName, podName } from '../../../activities/runtime/kubernetes/pod';
import { StepDetached, StepErrored } from '../../../activities/errors';
import { KubernetesRuntime, type KubernetesRuntimeOptions } from '../../../activities/runtime/kubernetes/runtime';
import type { RunTaskRequest } from '../../../activities/types';
import type { TaskConfig, TaskStep } from '../../../schemas/compiled';
import { adminCore, adminKubeConfig, freshNamespace, podGone, testCluster, uniqueBuildId, until, waitForPod } from '../setup/env';

// The tests run side by side (each its own build and pods; most of their time is the kubelet's):
// the file takes about as long as its slowest few instead of their sum.
jest.setTimeout(180_000);

let core: CoreV1Api;
let namespace: string;

beforeAll(async () => {
  core = adminCore();
  namespace = await freshNamespace(core, 'node-rt');
});

afterAll(async () => {
  await core?.deleteNamespace({ name: namespace }).catch(() => undefined);
});

/** The node's busybox (small, already on the node after its first pull). */
function busybox(): TaskConfig['image_resource'] {
  const [repository, tag] = testCluster().node!.images.busybox.split(/:(?=[^:]+$)/);
  return { type: 'registry-image', source: { repository, tag } };
}

const sh = (script: string, over: Partial<TaskConfig> = {}): TaskConfig => ({
  image_resource: busybox(),
  inputs: [],
  outputs: [],
  caches: [],
  params: {},
  run: { path: 'sh', args: ['-c', script] },
  ...over,
});

function request(config: TaskConfig, over: { step?: Partial<TaskStep>; buildId?: string; artifacts?: RunTaskRequest['artifacts'] } = {}) {
  const step: TaskStep = {
    kind: 'task',
    id: 'plan.0',
    task: 'unit',
    params: {},
    vars: {},
    inputMapping: {},
    outputMapping: {},
    privileged: false,
    config,
    ...over.step,
  };
  const req: RunTaskRequest = {
    buildId: over.buildId ?? uniqueBuildId(),
    runId: 'run-1',
    plan: 'test',
    step,
    runKey: '1',
    attempt: 1,
    artifacts: over.artifacts ?? {},
  };
  return req;
}

function runtime(over: Partial<KubernetesRuntimeOptions> = {}): KubernetesRuntime {
  return new KubernetesRuntime({
    namespace,
    worker: 'node-rt',
    kubeConfig: adminKubeConfig(),
    agentImage: testCluster().node!.images.agent,
    graceSeconds: 1,
    logDrainMs: 1000,
    ...over,
  });
}

const nameOf = (req: RunTaskRequest) => podName(req.buildId, req.runId, req.step.id, req.runKey, req.step.task);

const taskState = (pod: V1Pod) => pod.status?.containerStatuses?.find((c) => c.name === CONTAINERS.task)?.state;

/** Collects the step's log pieces; `text()` is what reached the sink, `contiguous()` checks the byte offsets. */
function logSink() {
  const chunks: { data: string; offset: number }[] = [];
  return {
    log: async (data: Buffer, offset: number) => void chunks.push({ data: data.toString(), offset }),
    text: () => chunks.map((c) => c.data).join(''),
    offsets: () => chunks.map((c) => c.offset),
    expected: () => {
      let at = 0;
      return chunks.map((c) => {
        const here = at;
        at += Buffer.byteLength(c.data);
        return here;
      });
    },
  };
}

describe('a real container ends the step', () => {
  test.concurrent.each([0, 3])('exit code %i comes from the task process, through the informer’s one list and one watch', async (code) => {
    const rt = runtime();
    const req = request(sh(`echo running; exit ${code}`));
    const outcome = await rt.runStep(req);
    expect(outcome).toMatchObject({ state: code === 0 ? 'succeeded' : 'failed', exitCode: code, reattached: false });
    expect(rt.calls.list).toBe(1);
    expect(rt.calls.watch).toBe(1);
    // a pod without outputs is deleted once its task ended
    await podGone(core, namespace, nameOf(req), 60_000);
  });

  test.concurrent('the task’s log comes from the kubelet, in order, with byte offsets, an unfinished last line included', async () => {
    const rt = runtime();
    const printed = 'one\ntwo two\n' + 'x'.repeat(5000) + '\n\nlast line without newline';
    const sink = logSink();
    const outcome = await rt.runStep(
      request(sh(`printf 'one\\ntwo two\\n'; head -c 5000 /dev/zero | tr '\\0' x; printf '\\n\\nlast line without newline'`)),
      {
        log: sink.log,
      },
    );
    expect(outcome).toMatchObject({ state: 'succeeded' });
    expect(sink.text()).toBe(printed);
    expect(sink.offsets()).toEqual(sink.expected());
    // A kubelet ends the followed log: the plain read that completes a stream cut short is needed only when it fell short.
    expect(rt.calls.log).toBeGreaterThanOrEqual(1);
  });

  // The kubelet ends a followed stream up to a second after the task's last write: a short log is
  // read again at once instead, a long one (more lines than a second read could take quickly) waited for.
  test.concurrent.each([
    ['a short log', 3],
    ['150,000 lines, sent in few messages', 150_000],
  ])('printed while followed, then the task ends: %s arrives whole', async (_what, lines) => {
    const rt = runtime();
    const sink = logSink();
    const outcome = await rt.runStep(request(sh(`echo started; sleep 2; seq 1 ${lines}; printf end`)), { log: sink.log });
    expect(outcome).toMatchObject({ state: 'succeeded' });
    expect(sink.text()).toBe(`started\n${Array.from({ length: lines }, (_, i) => `${i + 1}\n`).join('')}end`);
    expect(sink.offsets()).toEqual(sink.expected());
    // Not a message per line: at most one per poll of the live stream (every 10 ms while it brings bytes), up to 64 KiB each.
    expect(sink.offsets().length).toBeLessThan(lines > 1000 ? lines / 100 : 6);
  });

  test.concurrent('re-attached after its task ended, a step gets the whole log though the drain’s bound expired at once', async () => {
    // A worker re-attaching to a pod whose task has ended starts reading its log only then; with a
    // 1 ms drain the followed log cannot arrive in time, and one plain read completes it. The pod
    // has an output, so it stays after its task (no deletion races the step's last read).
    const req = request(sh('for i in 1 2 3 4 5; do echo "line $i"; done; mkdir -p out', { outputs: [{ name: 'out' }] }));
    const detach = new AbortController();
    const first = runtime().runStep(req, { detach: detach.signal });
    await waitForPod(core, namespace, nameOf(req), (p) => !!p.spec?.nodeName, 'scheduling');
    detach.abort();
    await expect(first).rejects.toBeInstanceOf(StepDetached);
    await until(
      async () => !!taskState(await core.readNamespacedPod({ name: nameOf(req), namespace }))?.terminated,
      'the task’s end',
      120_000,
    );
    const sink = logSink();
    await expect(runtime({ logDrainMs: 1 }).runStep(req, { log: sink.log })).resolves.toMatchObject({
      state: 'succeeded',
      reattached: true,
    });
    expect(sink.text()).toBe('line 1\nline 2\nline 3\nline 4\nline 5\n');
    expect(sink.offsets()).toEqual(sink.expected());
    await runtime().deleteBuild(req.buildId);
  });

  test.concurrent('a watch the server ends (its timeout) is resumed from its resourceVersion, not listed again', async () => {
    const rt = runtime({ watchTimeoutSeconds: 1 });
    await expect(rt.runStep(request(sh('sleep 3')))).resolves.toMatchObject({ state: 'succeeded' });
    expect(rt.calls.watch).toBeGreaterThanOrEqual(2);
    expect(rt.calls.list).toBe(1);
  });

  test.concurrent('a consumer pod fetches its input from the producer pod’s IP, through the agents', async () => {
    const rt = runtime();
    const buildId = uniqueBuildId();
    const producer = request(sh('echo from-the-producer > out/f', { outputs: [{ name: 'out' }] }), {
      buildId,
      step: { id: 'plan.0', task: 'produce' },
    });
    const produced = await rt.runStep(producer);
    if (produced.state !== 'succeeded') throw new Error(`producer: ${JSON.stringify(produced)}`);
    const ip = (await core.readNamespacedPod({ name: nameOf(producer), namespace })).status!.podIP;
    expect(ip).toMatch(/^198\.18\./);

    const consumer = request(sh('cat input/f', { inputs: [{ name: 'in', path: 'input' }] }), {
      buildId,
      step: { id: 'plan.1', task: 'consume', inputMapping: { in: 'out' } },
      artifacts: produced.outputs,
    });
    const sink = logSink();
    const consumed = rt.runStep(consumer, { log: sink.log });
    const pod = await waitForPod(core, namespace, nameOf(consumer), () => true, 'creation');
    const fetcher = pod.spec!.initContainers!.find((c) => c.name === CONTAINERS.fetcher)!;
    expect(JSON.parse(fetcher.env!.find((e) => e.name === 'CAUSEWAY_INPUTS')!.value!)).toEqual([
      { name: 'in', path: 'input', url: `http://${ip}:${STREAMER_PORT}/artifacts/out` },
    ]);
    await expect(consumed).resolves.toMatchObject({ state: 'succeeded' });
    expect(sink.text()).toBe('from-the-producer\n');
    await rt.deleteBuild(buildId);
  });
});

describe('abort and re-attach', () => {
  test.concurrent(
    'abort deletes the pod with the grace period: the kubelet’s SIGTERM reaches the task’s trap, whose output is read',
    async () => {
      // The kubelet starts the graceful kill some time after the deletion (seconds at load): the grace
      // period must cover that and the trap, or the runtime's SIGKILL (a deletion without grace) cuts it.
      const rt = runtime({ graceSeconds: 10 });
      const req = request(sh('trap "echo got SIGTERM; exit 143" TERM; echo waiting; while true; do sleep 0.2; done'));
      const abort = new AbortController();
      const notes: string[] = [];
      const sink = logSink();
      const run = rt.runStep(req, { abort: abort.signal, note: (t) => notes.push(t), log: sink.log });
      await until(async () => sink.text().includes('waiting'), 'the task running', 120_000);
      abort.abort();
      await expect(run).resolves.toMatchObject({ state: 'aborted' });
      expect({ log: sink.text(), notes }).toEqual({
        log: 'waiting\ngot SIGTERM\n',
        // The kubelet may report the container's end after the grace period, at load: then the step
        // layer's SIGKILL follows ('step killed'), after the trap has run.
        notes: expect.arrayContaining([expect.stringMatching(/grace period 10s/)]),
      });
      await podGone(core, namespace, nameOf(req), 60_000);
    },
  );

  test.concurrent('a retried activity re-attaches to the running pod its previous attempt created, and gets its exit code', async () => {
    const req = request(sh('echo started; sleep 6; exit 5'));
    const detach = new AbortController();
    const sink = logSink();
    const first = runtime().runStep(req, { detach: detach.signal, log: sink.log });
    await until(async () => sink.text().includes('started'), 'the task running', 120_000);
    const pod = await core.readNamespacedPod({ name: nameOf(req), namespace });
    detach.abort(); // the worker shuts down: the pod must survive
    await expect(first).rejects.toBeInstanceOf(StepDetached);
    const still = await core.readNamespacedPod({ name: nameOf(req), namespace });
    expect(still.metadata?.uid).toBe(pod.metadata?.uid);
    expect(still.metadata?.deletionTimestamp).toBeUndefined();

    const rt2 = runtime();
    const outcome = await rt2.runStep(req);
    expect(outcome).toMatchObject({ state: 'failed', exitCode: 5, reattached: true, pod: nameOf(req) });
    expect(rt2.calls.create).toBe(0);
    const pods = await core.listNamespacedPod({ namespace, labelSelector: `${LABELS.build}=${req.buildId}` });
    expect(pods.items.filter((p) => !p.metadata?.deletionTimestamp).length).toBeLessThanOrEqual(1);
  });
});

describe('errors end the step errored with Kubernetes’ reason', () => {
  test.concurrent('an image the registry does not have: the kubelet’s pull error', async () => {
    const { registry } = testCluster().node!;
    const req = request(
      sh('true', { image_resource: { type: 'registry-image', source: { repository: `${registry}/causeway/does-not-exist`, tag: '1' } } }),
    );
    const run = runtime().runStep(req);
    await expect(run).rejects.toBeInstanceOf(StepErrored);
    await expect(run).rejects.toThrow(/(ErrImagePull|ImagePullBackOff): .*does-not-exist/);
    // the step's pod would keep pulling: it is deleted
    await podGone(core, namespace, nameOf(req), 60_000);
  });

  test.concurrent('unschedulable: a tag no node has, with the scheduler’s message', async () => {
    const rt = runtime({ unschedulableGraceMs: 500 });
    const req = request(sh('true'), { step: { tags: ['no-such-node'] } });
    await expect(rt.runStep(req)).rejects.toThrow(
      /unschedulable: 0\/1 nodes are available: .*node\(s\) didn't match Pod's node affinity\/selector/,
    );
  });
});

test.concurrent('deleting the build’s anchor cascades to its pods and token Secret (garbage collector, then the kubelet)', async () => {
  const rt = runtime();
  const req = request(sh('echo kept > out/f', { outputs: [{ name: 'out' }] }));
  await expect(rt.runStep(req)).resolves.toMatchObject({ state: 'succeeded' });
  // a producer pod stays for its consumers
  const kept = await core.readNamespacedPod({ name: nameOf(req), namespace });
  expect(kept.metadata?.deletionTimestamp).toBeUndefined();

  expect(await rt.deleteBuild(req.buildId)).toBe(true);
  await podGone(core, namespace, nameOf(req), 60_000);
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
