// What the k8s project's globalSetup started (or the k8s-node project's), as test files see it,
// plus helpers the k8s tests use: a fresh namespace per test file, waits on pods, and, for the
// KWOK tests that need a fake node (an eviction, 200 pods at once), pod status patches "as a
// kubelet would".
import { randomUUID } from 'node:crypto';
import { k8s, type CoreV1Api, type KubeConfig, type V1Pod } from '../../../activities/runtime/kubernetes/client';
import { KWOK_CUSTOM_STATUS_ANNOTATION, readCluster, type ClusterState } from '../cluster';

export function testCluster(): ClusterState {
  const dir = process.env.CAUSEWAY_TEST_K8S_DIR;
  if (!dir)
    throw new Error(
      'CAUSEWAY_TEST_K8S_DIR is not set: run this test through the jest "k8s" project, whose globalSetup starts the control plane',
    );
  return readCluster(dir);
}

export function adminKubeConfig(): KubeConfig {
  const kc = new (k8s().KubeConfig)();
  kc.loadFromFile(testCluster().kubeconfig);
  return kc;
}

export function adminCore(): CoreV1Api {
  return adminKubeConfig().makeApiClient(k8s().CoreV1Api);
}

/** A namespace of its own, with its default service account (created by the controller-manager). */
export async function freshNamespace(core: CoreV1Api, prefix = 'cw'): Promise<string> {
  const name = `${prefix}-${randomUUID().slice(0, 8)}`;
  await core.createNamespace({ body: { metadata: { name } } });
  await until(async () => {
    try {
      await core.readNamespacedServiceAccount({ name: 'default', namespace: name });
      return true;
    } catch {
      return false;
    }
  }, `default service account in ${name}`);
  return name;
}

/**
 * Records every pod of `namespace` seen while a test's builds run, by name (a build deletes its
 * pods at its end): polled every 200 ms until `stop()`.
 */
export function recordPods(core: CoreV1Api, namespace: string): { seen: Map<string, V1Pod>; stop(): void } {
  const seen = new Map<string, V1Pod>();
  const timer = setInterval(() => {
    void core
      .listNamespacedPod({ namespace })
      .then((l) => l.items.forEach((p) => seen.set(p.metadata!.name!, p)))
      .catch(() => undefined);
  }, 200);
  return { seen, stop: () => clearInterval(timer) };
}

export async function until<T>(check: () => Promise<T | false | undefined>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function waitForPod(
  core: CoreV1Api,
  namespace: string,
  name: string,
  ok: (pod: V1Pod) => boolean,
  what = 'pod state',
): Promise<V1Pod> {
  return until(async () => {
    try {
      const pod = await core.readNamespacedPod({ name, namespace });
      return ok(pod) ? pod : false;
    } catch {
      return false;
    }
  }, `${what} of ${namespace}/${name}`);
}

export async function podGone(core: CoreV1Api, namespace: string, name: string, timeoutMs = 30_000): Promise<void> {
  await until(
    async () => {
      try {
        await core.readNamespacedPod({ name, namespace });
        return false;
      } catch (err) {
        return (err as { code?: number }).code === 404;
      }
    },
    `deletion of ${namespace}/${name}`,
    timeoutMs,
  );
}

/** Tells KWOK to leave the pod alone, so the test plays kubelet. */
export async function takeOverPod(core: CoreV1Api, namespace: string, name: string): Promise<void> {
  await core.patchNamespacedPod(
    { name, namespace, body: { metadata: { annotations: { [KWOK_CUSTOM_STATUS_ANNOTATION]: 'custom' } } } },
    mergePatch(),
  );
}

/** PATCH pods/status with a JSON merge patch, as a kubelet updates a pod's status. */
export async function patchPodStatus(core: CoreV1Api, namespace: string, name: string, status: Record<string, unknown>): Promise<V1Pod> {
  return core.patchNamespacedPodStatus({ name, namespace, body: { status } }, mergePatch());
}

function mergePatch() {
  return k8s().setHeaderOptions('Content-Type', k8s().PatchStrategy.MergePatch);
}

/** A finished task container, as a kubelet reports it. */
export function terminated(exitCode: number, reason = exitCode === 0 ? 'Completed' : 'Error') {
  const now = new Date().toISOString();
  return { terminated: { exitCode, reason, startedAt: now, finishedAt: now } };
}

export function uniqueBuildId(): string {
  return `build-${randomUUID()}`;
}
