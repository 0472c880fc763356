// Reading an output from a producer pod that is gone (exports, `file:` configs, load_var): the
// error says which pod and what to do. Only the API server takes part (it answers that the pod
// does not exist). Uploads, exports, `file:` and load_var through real pods, with the agent image
// run by the kubelet: test/k8s/node/artifacts.test.ts.
import type { CoreV1Api } from '../../activities/runtime/kubernetes/client';
import { podArtifact } from '../../activities/runtime/kubernetes/artifact-ref';
import { openPodArtifact } from '../../activities/runtime/kubernetes/artifacts';
import { KubernetesRuntime } from '../../activities/runtime/kubernetes/runtime';
import { adminCore, adminKubeConfig, freshNamespace, uniqueBuildId } from './setup/env';

let core: CoreV1Api;
let namespace: string;

beforeAll(async () => {
  core = adminCore();
  namespace = await freshNamespace(core, 'artifacts');
});

afterAll(async () => {
  await core?.deleteNamespace({ name: namespace }).catch(() => undefined);
});

test('an output whose producer pod is gone: the error names the pod and says to run the build again', async () => {
  const rt = new KubernetesRuntime({ namespace, worker: 'k8s-io', kubeConfig: adminKubeConfig(), artifactRetryMs: 1000 });
  const buildId = uniqueBuildId();
  await rt.ensureAnchor(buildId);
  await expect(
    openPodArtifact(rt, buildId, podArtifact(rt.worker, 'cw-gone-0123456789abcdef', 'out'), 'output out (-o out)'),
  ).rejects.toThrow(
    "output out (-o out): its producer pod cw-gone-0123456789abcdef is gone (deleted, evicted, or removed with its build's objects); run the build again",
  );
  await rt.deleteBuild(buildId);
});
