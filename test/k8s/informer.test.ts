// The kubernetes runtime's shared pod informer (activities/runtime/kubernetes/pod-watcher.ts)
// against a real kube-apiserver: many steps in parallel cost one list and one watch connection;
// an API server that goes away while pods are followed errors the steps (APIUnreachable) after
// apiUnreachableMs, or, back in time, the steps go on from a fresh list.
import net from 'node:net';
import { k8s, type CoreV1Api, type KubeConfig } from '../../activities/runtime/kubernetes/client';
import { CONTAINERS, podName } from '../../activities/runtime/kubernetes/pod';
import { podInformer } from '../../activities/runtime/kubernetes/pod-watcher';
import { KubernetesRuntime, type KubernetesRuntimeOptions } from '../../activities/runtime/kubernetes/runtime';
import type { RunTaskRequest } from '../../activities/types';
import { adminCore, adminKubeConfig, freshNamespace, patchPodStatus, takeOverPod, terminated, uniqueBuildId, until } from './setup/env';
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

/** A TCP relay in front of the API server, which the test can cut (every connection) and restore. */
class Relay {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(private readonly target: URL) {}

  async open(): Promise<void> {
    this.server = net.createServer((client) => {
      const upstream = net.connect(Number(this.target.port), this.target.hostname);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  async cut(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server?.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  kubeConfig(): KubeConfig {
    const admin = adminKubeConfig();
    const cluster = admin.getCurrentCluster()!;
    const kc = new (k8s().KubeConfig)();
    kc.loadFromOptions({
      clusters: [{ ...cluster, server: `https://127.0.0.1:${this.port}` }],
      users: admin.users,
      contexts: [{ name: 'relay', cluster: cluster.name, user: admin.getCurrentUser()!.name }],
      currentContext: 'relay',
    });
    return kc;
  }
}

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

  test('back within apiUnreachableMs, the steps go on from a fresh list', async () => {
    const rt = runtime({ kubeConfig: relay.kubeConfig(), apiUnreachableMs: 60_000 });
    const buildId = uniqueBuildId();
    const reqs = [request(buildId, 0), request(buildId, 1)];
    const runs = reqs.map((req) => rt.runStep(req).catch((err: unknown) => err));
    await until(async () => rt.calls.watch > 0, 'the informer watching');
    await relay.cut();
    // meanwhile one task ends; the other is deleted by hand (its step errors, as before)
    await finish(reqs[0], 4);
    await core.deleteNamespacedPod({ name: nameOf(reqs[1]), namespace, gracePeriodSeconds: 0 });
    await new Promise((r) => setTimeout(r, 1500));
    await relay.open();
    expect(await runs[0]).toMatchObject({ state: 'failed', exitCode: 4 });
    expect(await runs[1]).toMatchObject({ reason: 'Deleted' });
    expect(rt.calls.list).toBeGreaterThanOrEqual(2);
    await podInformerStopped(rt);
  });
});
