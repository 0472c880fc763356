// The pod informer (activities/runtime/kubernetes/pod-watcher.ts) when the API server goes away
// while real containers run and comes back within apiUnreachableMs: a task that ended meanwhile
// gets its real exit code, and a pod deleted meanwhile errors its step, both from a fresh list.
// (test/k8s/informer.test.ts: the 200-pod count and the unreachable error, on KWOK.)
import type { CoreV1Api } from '../../../activities/runtime/kubernetes/client';
import { CONTAINERS, podName } from '../../../activities/runtime/kubernetes/pod';
import { podInformer } from '../../../activities/runtime/kubernetes/pod-watcher';
import { KubernetesRuntime } from '../../../activities/runtime/kubernetes/runtime';
import type { RunTaskRequest } from '../../../activities/types';
import { Relay } from '../relay';
import { adminCore, adminKubeConfig, freshNamespace, testCluster, uniqueBuildId, until } from '../setup/env';
import { trueTaskStep } from '../task-step';

jest.setTimeout(180_000);

let core: CoreV1Api;
let namespace: string;
let relay: Relay;

beforeAll(async () => {
  core = adminCore();
  namespace = await freshNamespace(core, 'node-inf');
  relay = new Relay(new URL(adminKubeConfig().getCurrentCluster()!.server));
  await relay.open();
});

afterAll(async () => {
  await relay?.cut();
  await core?.deleteNamespace({ name: namespace }).catch(() => undefined);
});

function request(buildId: string, i: number, script: string): RunTaskRequest {
  return {
    buildId,
    runId: 'run-1',
    plan: 'test',
    runKey: '1',
    attempt: 1,
    artifacts: {},
    step: trueTaskStep(i, [], { image: testCluster().node!.images.busybox, script }),
  };
}

const nameOf = (req: RunTaskRequest) => podName(req.buildId, req.runId, req.step.id, req.runKey, req.step.task);

/** The task container's state; undefined while the pod is not created yet. */
const taskState = async (req: RunTaskRequest) => {
  const pod = await core.readNamespacedPod({ name: nameOf(req), namespace }).catch(() => undefined);
  return pod?.status?.containerStatuses?.find((c) => c.name === CONTAINERS.task)?.state;
};

test('back within apiUnreachableMs, the steps go on from a fresh list: a real exit code, a pod deleted meanwhile', async () => {
  const rt = new KubernetesRuntime({
    namespace,
    worker: 'node-informer',
    kubeConfig: relay.kubeConfig(),
    graceSeconds: 0,
    logDrainMs: 200,
    apiUnreachableMs: 120_000,
  });
  const buildId = uniqueBuildId();
  // long enough that a poll on a loaded machine sees it running before it ends
  const reqs = [request(buildId, 0, 'sleep 12; exit 4'), request(buildId, 1, 'sleep 600')];
  const runs = reqs.map((req) => rt.runStep(req).catch((err: unknown) => err));
  await until(async () => rt.calls.watch > 0, 'the informer watching', 60_000);
  for (const req of reqs) {
    await until(
      async () => {
        const state = await taskState(req);
        return state?.running ?? state?.terminated;
      },
      `${nameOf(req)} running`,
      120_000,
    );
  }
  await relay.cut();
  // meanwhile one task ends (its process exits 4); the other pod is deleted by hand (its step errors, as before)
  await until(async () => (await taskState(reqs[0]))?.terminated, 'the first task’s end', 60_000);
  await core.deleteNamespacedPod({ name: nameOf(reqs[1]), namespace, gracePeriodSeconds: 0 });
  await relay.open();
  expect(await runs[0]).toMatchObject({ state: 'failed', exitCode: 4 });
  expect(await runs[1]).toMatchObject({ reason: 'Deleted' });
  expect(rt.calls.list).toBeGreaterThanOrEqual(2);
  await podInformer(rt).stop();
});
