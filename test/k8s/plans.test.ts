// The shared table of plans (test/plans/table.ts) on the kubernetes runtime, against the real
// control plane: it must give the step trees the fake and the local runtime give. KWOK runs no
// container, so this test plays kubelet: each step pod's `sh -c` script is interpreted by the
// fake runtime's shell and the pod's task container ends with its status.
import type { Client } from '@temporalio/client';
import type { CoreV1Api } from '../../activities/runtime/kubernetes/client';
import { CONTAINERS } from '../../activities/runtime/kubernetes/pod';
import { awaitBuild, startBuild } from '../../common/build-client';
import { compilePlan } from '../../schemas';
import { FakeProcess } from '../fake/shell';
import { PLANS, stepTree } from '../plans/table';
import { KWOK_CUSTOM_STATUS_ANNOTATION } from './cluster';
import { startBuildEnv, type BuildEnv } from './setup/builds';
import { adminCore, adminKubeConfig, freshNamespace, patchPodStatus, takeOverPod, terminated } from './setup/env';

jest.setTimeout(180_000);

let env: BuildEnv;
let core: CoreV1Api;
let namespace: string;
let client: Client;
let kubelet: NodeJS.Timeout;
/** the scripts running for step pods, by pod name */
const scripts = new Map<string, FakeProcess>();

async function playKubelet(): Promise<void> {
  const pods = await core.listNamespacedPod({ namespace });
  for (const pod of pods.items) {
    const name = pod.metadata!.name!;
    if (scripts.has(name) || pod.metadata?.deletionTimestamp || pod.status?.phase !== 'Running') continue;
    if (pod.metadata?.annotations?.[KWOK_CUSTOM_STATUS_ANNOTATION]) continue;
    const container = pod.spec!.containers.find((c) => c.name === CONTAINERS.task);
    if (!container) continue;
    const args = container.args ?? [];
    const vars = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value ?? '']));
    const script = new FakeProcess(args[0] === '-c' ? args[1] : `exit 127`, vars, new Map());
    scripts.set(name, script);
    await takeOverPod(core, namespace, name);
    void script.done.then((code) =>
      patchPodStatus(core, namespace, name, {
        containerStatuses: [
          { name: CONTAINERS.task, image: 'busybox', imageID: '', ready: false, restartCount: 0, state: terminated(code) },
        ],
      }).catch(() => undefined),
    );
  }
}

beforeAll(async () => {
  core = adminCore();
  namespace = await freshNamespace(core, 'plans');
  env = await startBuildEnv('k8s-plans', {
    kubernetes: { namespace, kubeConfig: adminKubeConfig(), graceSeconds: 1, unschedulableGraceMs: 500, logDrainMs: 1000 },
  });
  client = env.client;
  kubelet = setInterval(() => void playKubelet().catch(() => undefined), 100);
});

afterAll(async () => {
  clearInterval(kubelet);
  // A pod deleted mid-script (a timeout) leaves its script sleeping.
  for (const script of scripts.values()) script.signal('SIGKILL');
  await env?.stop();
});

test.each(PLANS.map((c) => [c.name, c] as const))('%s', async (_n, c) => {
  const plan = compilePlan({ text: `plan:\n${c.plan}`, file: 'plans.yml' });
  const outcome = await awaitBuild(await startBuild(client, { plan, taskQueue: env.taskQueue }));
  expect({ status: outcome.status, steps: stepTree(outcome.summary?.steps) }).toEqual({
    status: c.status,
    steps: { plan: c.status, ...c.steps },
  });
});
