// Whole builds on the kubernetes runtime with only the API server doing the work: a real
// Temporal dev server and NATS (started here, as the integration project does), a
// kubernetes-runtime worker, and the k8s project's control plane. What is checked needs no
// container to end: the worker's registry record, and the reconciler's pass over builds whose
// pods (KWOK keeps them Running, as a kubelet keeps a hanging task) are left behind or still
// running. Whole builds of real containers (outputs pod to pod, exit codes, credentials, abort,
// a worker's handover, services) are in test/k8s/node/build.test.ts and cli.test.ts.
import type { Client } from '@temporalio/client';
import type { CoreV1Api } from '../../activities/runtime/kubernetes/client';
import { LABELS, anchorName } from '../../activities/runtime/kubernetes/pod';
import { awaitBuild, startBuild } from '../../common/build-client';
import { compilePlan } from '../../schemas';
import { WorkerRecord } from '../../schemas/workers';
import { workerBucket } from '../../workers/registry';
import { reconcileKubernetes } from '../../activities/runtime/kubernetes/reconcile';
import { startBuildEnv, type BuildEnv } from './setup/builds';
import { adminCore, adminKubeConfig, freshNamespace, until } from './setup/env';

jest.setTimeout(180_000);

let core: CoreV1Api;
let namespace: string;
let worker: BuildEnv['worker'];
let client: Client;
let nc: BuildEnv['nc'];
let taskQueue: string;
let env: BuildEnv;

beforeAll(async () => {
  core = adminCore();
  namespace = await freshNamespace(core, 'build');
  env = await startBuildEnv('k8s-build', {
    tags: ['gpu', 'nowhere'],
    kubernetes: { namespace, kubeConfig: adminKubeConfig(), graceSeconds: 1, logDrainMs: 1000 },
  });
  ({ taskQueue, worker, client, nc } = env);
});

afterAll(async () => {
  await env?.stop();
});

const image = { type: 'registry-image', source: { repository: 'busybox', tag: '1.37' } };
/** A step whose pod KWOK keeps Running until it is deleted. */
const hanging = (name: string) =>
  JSON.stringify({ task: name, config: { platform: 'linux', image_resource: image, run: { path: 'sh', args: ['-c', 'true'] } } });

async function run(yaml: string) {
  const plan = compilePlan({ text: yaml, file: 'k8s.yml' });
  const handle = await startBuild(client, { plan, taskQueue });
  return { handle, outcome: awaitBuild(handle) };
}

const podsOf = async (buildId: string) => (await core.listNamespacedPod({ namespace, labelSelector: `${LABELS.build}=${buildId}` })).items;

test('the kubernetes worker is in the worker registry with its runtime and tags', async () => {
  const kv = await workerBucket(nc);
  const record = WorkerRecord.parse((await kv.get(worker.name))?.json());
  expect(record).toMatchObject({ name: worker.name, runtime: 'kubernetes', state: 'running', tags: ['gpu', 'nowhere'] });
});

test('the reconciler deletes what a terminated build left (no teardown ran) and leaves running builds alone', async () => {
  const terminatedBuild = await run(`plan:\n- ${hanging('left-behind')}\n`);
  const runningBuild = await run(`plan:\n- ${hanging('still-running')}\n`);
  const leftPod = await until(async () => (await podsOf(terminatedBuild.handle.workflowId))[0], 'the left-behind pod');
  await until(async () => (await podsOf(runningBuild.handle.workflowId))[0], 'the running pod');
  await terminatedBuild.handle.terminate('test: no teardown');
  expect((await terminatedBuild.outcome).status).not.toBe('succeeded');
  // terminate runs no workflow code: the anchor and the pod are still there
  await core.readNamespacedConfigMap({ name: anchorName(terminatedBuild.handle.workflowId), namespace });

  const report = await reconcileKubernetes(worker.runtime, client);
  expect(report.deleted).toEqual([terminatedBuild.handle.workflowId]);
  expect(report.running).toEqual([runningBuild.handle.workflowId]);
  await until(
    async () => {
      try {
        await core.readNamespacedPod({ name: leftPod.metadata!.name!, namespace });
        return false;
      } catch (err) {
        return (err as { code?: number }).code === 404;
      }
    },
    'the left-behind pod deleted through the anchor',
    60_000,
  );
  await core.readNamespacedConfigMap({ name: anchorName(runningBuild.handle.workflowId), namespace });
  await runningBuild.handle.cancel();
  expect((await runningBuild.outcome).status).toBe('aborted');
});
