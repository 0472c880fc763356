// The kubernetes runtime's shared pod informer (activities/runtime/kubernetes/pod-watcher.ts)
// against a real kube-apiserver and KWOK's fake nodes: 200 steps in parallel cost one list and
// one watch connection (the fake node is the point: a real node runs at most 110 pods, and 200
// containers would not fit this 2-core machine beside the rest, so the test ends each task by
// patching its status, as a kubelet reports it); an API server that goes away while pods are
// followed errors the steps (APIUnreachable) after apiUnreachableMs (the API server only: no
// task ends). Back in time, the steps go on from a fresh list: with real containers in
// test/k8s/node/informer.test.ts.
import type { CoreV1Api } from '../../activities/runtime/kubernetes/client';
import { CONTAINERS, podName } from '../../activities/runtime/kubernetes/pod';
import { podInformer } from '../../activities/runtime/kubernetes/pod-watcher';
import { KubernetesRuntime, type KubernetesRuntimeOptions } from '../../activities/runtime/kubernetes/runtime';
import type { RunTaskRequest } from '../../activities/types';
import { adminCore, adminKubeConfig, freshNamespace, patchPodStatus, takeOverPod, terminated, uniqueBuildId, until } from './setup/env';
import { Relay } from './relay';
import { trueTaskStep } from './task-step';

let core: CoreV1Api;
let namespace: string;

beforeAll(async () => {
  core = adminCore();
  namespace = await freshNamespace(core, 'cw-inf');
});

function request(buildId: string, i: number): RunTaskRequest {
  return {
    buildId,
    runId: 'run-1',
    plan: 'test',
    runKey: '1',
    attempt: 1,
    artifacts: {},
    step: trueTaskStep(i),
  };
}

const nameOf = (req: RunTaskRequest) => podName(req.buildId, req.runId, req.step.id, req.runKey, req.step.task);

function runtime(over: Partial<KubernetesRuntimeOptions> = {}): KubernetesRuntime {
  return new KubernetesRuntime({
    namespace,
    worker: 'k8s-informer',
    kubeConfig: adminKubeConfig(),
    graceSeconds: 0,
    logDrainMs: 200,
    ...over,
  });
}

/** Plays the kubelet: the task container of the step's pod ended with this exit code. */
async function finish(req: RunTaskRequest, exitCode: number): Promise<void> {
  await takeOverPod(core, namespace, nameOf(req));
  await patchPodStatus(core, namespace, nameOf(req), {
    phase: 'Running',
    containerStatuses: [
      { name: CONTAINERS.task, image: 'busybox:1.37', imageID: '', ready: false, restartCount: 0, state: terminated(exitCode) },
    ],
  });
}

/** Runs `fn` over `items`, `width` at a time (the test's own kubelet calls; the steps themselves all run at once). */
async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

test('200 parallel steps cost one list and one watch connection, not 200', async () => {
  const rt = runtime();
  const buildId = uniqueBuildId();
  const reqs = Array.from({ length: 200 }, (_, i) => request(buildId, i));
  const runs = reqs.map((req) => rt.runStep(req));
  await until(
    async () => (await core.listNamespacedPod({ namespace, labelSelector: `causeway.dev/build=${buildId}` })).items.length === reqs.length,
    'all 200 pods',
    120_000,
  );
  // one watch for all of them, from one list
  const informer = podInformer(rt);
  await until(async () => informer.following === reqs.length, 'all 200 steps following their pods', 60_000);
  // A loaded API server may end the watch and the informer re-open it (a fresh list after an
  // error): what matters is one connection at a time and a few calls, not one per pod.
  await until(async () => informer.watching === 1, 'the informer watching', 30_000);
  expect(rt.calls.watch).toBeLessThanOrEqual(3);
  expect(rt.calls.list).toBeLessThanOrEqual(3);
  await pool(reqs, 8, (req) => finish(req, Number(req.step.id.split('.')[1]) % 3));
  const outcomes = await Promise.all(runs);
  expect(outcomes.map((o) => (o.state === 'aborted' ? -1 : o.exitCode))).toEqual(reqs.map((_, i) => i % 3));
  expect(informer.watching).toBe(1);
  // the server may end a watch whose reader falls behind (2 cores): resumed, never several at once
  expect(rt.calls.watch).toBeLessThanOrEqual(3);
  await podInformerStopped(rt);
  await until(async () => informer.watching === 0, 'the watch ended');
}, 300_000);

/** The informer outlives its last follower a little: the test ends its watch now. */
const podInformerStopped = (rt: KubernetesRuntime) => podInformer(rt).stop();

describe('an API server that goes away while pods are followed', () => {
  let relay: Relay;
  beforeEach(async () => {
    relay = new Relay(new URL(adminKubeConfig().getCurrentCluster()!.server));
    await relay.open();
  });
  afterEach(() => relay.cut());

  test('errors the steps with APIUnreachable after apiUnreachableMs', async () => {
    const rt = runtime({ kubeConfig: relay.kubeConfig(), apiUnreachableMs: 2000 });
    const buildId = uniqueBuildId();
    const reqs = [request(buildId, 0), request(buildId, 1)];
    const runs = reqs.map((req) => rt.runStep(req).catch((err: unknown) => err));
    await until(async () => rt.calls.watch > 0, 'the informer watching');
    await relay.cut();
    for (const err of await Promise.all(runs)) {
      expect(err).toMatchObject({ reason: 'APIUnreachable' });
      expect(String(err)).toMatch(/Kubernetes API server unreachable for \ds while watching pod /);
    }
  });
});
