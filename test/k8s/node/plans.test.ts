// The shared table of plans (test/plans/table.ts) on the real node: every step a pod whose
// container the kubelet runs (the table's `busybox`, which the node's containerd resolves to its
// local registry under Docker Hub's name, as the containerd runtime does); the step trees must be
// the ones the fake, local and containerd runs give.
import type { Client } from '@temporalio/client';
import type { CoreV1Api } from '../../../activities/runtime/kubernetes/client';
import { awaitBuild, startBuild } from '../../../common/build-client';
import { compilePlan } from '../../../schemas';
import { PLANS, stepTree } from '../../plans/table';
import { startBuildEnv, type BuildEnv } from '../setup/builds';
import { adminCore, adminKubeConfig, freshNamespace, testCluster } from '../setup/env';

jest.setTimeout(300_000);

let core: CoreV1Api;
let namespace: string;
let env: BuildEnv;
let client: Client;

beforeAll(async () => {
  core = adminCore();
  namespace = await freshNamespace(core, 'node-plans');
  const { images } = testCluster().node!;
  env = await startBuildEnv('k8s-node-plans', {
    kubernetes: { namespace, kubeConfig: adminKubeConfig(), defaultImage: images.task, agentImage: images.agent, graceSeconds: 1 },
  });
  client = env.client;
});

afterAll(async () => {
  await env?.stop();
  await core?.deleteNamespace({ name: namespace }).catch(() => undefined);
});

test.each(PLANS.map((c) => [c.name, c] as const))('%s', async (_n, c) => {
  const plan = compilePlan({ text: `plan:\n${c.plan}`, file: 'plans.yml' });
  const outcome = await awaitBuild(await startBuild(client, { plan, taskQueue: env.taskQueue }));
  expect({ status: outcome.status, steps: stepTree(outcome.summary?.steps) }).toEqual({
    status: c.status,
    steps: { plan: c.status, ...c.steps },
  });
});
