// Follows one pod of the worker's namespace until a decision is reached: a GET, then a watch
// from its resourceVersion, resumed when the server ends it.
import type { KubeApi } from './api';
import { k8s, type V1Pod } from './client';
import { apiCode } from './errors';

export interface FollowHooks {
  signal?: AbortSignal;
  heartbeat?: () => void;
}

/**
 * Follows one pod (a GET, then a watch from its resourceVersion, resumed when the server ends
 * it) until `decide` returns a value; `decide(undefined)` means the pod is gone.
 */
export async function followPod<T>(
  rt: KubeApi,
  name: string,
  decide: (pod: V1Pod | undefined) => T | undefined,
  hooks: FollowHooks = {},
): Promise<T | 'aborted'> {
  const beat = setInterval(() => hooks.heartbeat?.(), 1000);
  let abortWatch: AbortController | undefined;
  try {
    for (;;) {
      if (hooks.signal?.aborted) return 'aborted';
      let pod: V1Pod | undefined;
      try {
        rt.calls.get++;
        pod = await rt.core.readNamespacedPod({ name, namespace: rt.namespace });
      } catch (err) {
        if (apiCode(err) !== 404) throw err;
      }
      const first = decide(pod);
      if (first !== undefined) return first;
      const result = await new Promise<T | 'aborted' | 'resume'>((resolve, reject) => {
        const onAbort = () => resolve('aborted');
        hooks.signal?.addEventListener('abort', onAbort, { once: true });
        rt.calls.watch++;
        new (k8s().Watch)(rt.kc)
          .watch(
            `/api/v1/namespaces/${rt.namespace}/pods`,
            {
              fieldSelector: `metadata.name=${name}`,
              resourceVersion: pod?.metadata?.resourceVersion,
              allowWatchBookmarks: true,
              timeoutSeconds: 300,
            },
            (type: string, obj: V1Pod) => {
              rt.calls.watchEvents++;
              if (type === 'BOOKMARK' || type === 'ERROR') return;
              const v = decide(type === 'DELETED' ? undefined : obj);
              if (v !== undefined) resolve(v);
            },
            () => resolve('resume'),
          )
          .then((a) => (abortWatch = a), reject);
      });
      abortWatch?.abort();
      if (result !== 'resume') return result;
    }
  } finally {
    clearInterval(beat);
    abortWatch?.abort();
  }
}
