// Whole builds on the kubernetes runtime: a real Temporal dev server and NATS (started here,
// as the integration project does), a kubernetes-runtime worker, and the real control plane
// of the k8s project. The test plays kubelet for the step pods: each pod KWOK has started is
// taken over and its task container ends with the exit code in its EXIT_CODE env var
// (pods with HANG=1 never end).
import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import pino from 'pino';
import type { CoreV1Api, V1Pod } from '../../activities/runtime/kubernetes/client';
import { ANNOTATIONS, CONTAINERS, LABELS, anchorName } from '../../activities/runtime/kubernetes/pod';
import { awaitBuild, startBuild } from '../../common/build-client';
import { collectLogs, collectServiceLogs } from '../../common/build-log';
import { AesGcmPayloadCodec, loadCodecKeys } from '../../common/codec';
import { compilePlan } from '../../schemas';
import { parseResourceImages } from '../../schemas/resource-images';
import { WorkerRecord } from '../../schemas/workers';
import { workerBucket } from '../../workers/registry';
import { reconcileKubernetes } from '../../activities/runtime/kubernetes/reconcile';
import { startKubernetesWorker } from '../../workers/kubernetes';
import { FAKE_TASK_LOG, KWOK_CUSTOM_STATUS_ANNOTATION } from './cluster';
import { startBuildEnv, type BuildEnv } from './setup/builds';
import { adminCore, adminKubeConfig, freshNamespace, patchPodStatus, takeOverPod, terminated, until } from './setup/env';

jest.setTimeout(180_000);

let home: string;
let bundle: BuildEnv['bundle'];
let endpoints: { temporal: string; nats: string };
let core: CoreV1Api;
let namespace: string;
let worker: BuildEnv['worker'];
let client: Client;
let nc: BuildEnv['nc'];
let taskQueue: string;
let kubelet: NodeJS.Timeout;
/** every step pod the fake kubelet saw, by name */
const seen = new Map<string, V1Pod>();

async function playKubelet(): Promise<void> {
  const pods = await core.listNamespacedPod({ namespace });
  for (const pod of pods.items) {
    const name = pod.metadata!.name!;
    if (!seen.has(name)) seen.set(name, pod);
    if (pod.metadata?.deletionTimestamp || pod.status?.phase !== 'Running') continue;
    if (pod.metadata?.annotations?.[KWOK_CUSTOM_STATUS_ANNOTATION]) continue;
    // step pods only: a service pod runs until its step's teardown deletes it
    const taskContainer = pod.spec!.containers.find((c) => c.name === CONTAINERS.task);
    if (!taskContainer) continue;
    const env = Object.fromEntries((taskContainer.env ?? []).map((e) => [e.name, e.value]));
    if (env.HANG) continue;
    await takeOverPod(core, namespace, name);
    await patchPodStatus(core, namespace, name, {
      containerStatuses: [
        {
          name: CONTAINERS.task,
          image: 'busybox',
          imageID: '',
          ready: false,
          restartCount: 0,
          state: terminated(Number(env.EXIT_CODE ?? 0)),
        },
      ],
    });
  }
}

let env: BuildEnv;

beforeAll(async () => {
  core = adminCore();
  namespace = await freshNamespace(core, 'build');
  env = await startBuildEnv('k8s-build', {
    tags: ['gpu', 'nowhere'],
    kubernetes: {
      namespace,
      kubeConfig: adminKubeConfig(),
      graceSeconds: 1,
      unschedulableGraceMs: 500,
      logDrainMs: 1000,
      resourceImages: parseResourceImages('registry.test:5000/causeway'),
    },
  });
  ({ home, bundle, endpoints, taskQueue, worker, client, nc } = env);
  kubelet = setInterval(() => void playKubelet().catch(() => undefined), 100);
});

afterAll(async () => {
  clearInterval(kubelet);
  await env?.stop();
});

const image = { type: 'registry-image', source: { repository: 'busybox', tag: '1.37' } };
const task = (name: string, extra: Record<string, unknown> = {}, config: Record<string, unknown> = {}) =>
  JSON.stringify({
    task: name,
    config: { platform: 'linux', image_resource: image, run: { path: 'sh', args: ['-c', 'true'] }, ...config },
    ...extra,
  });

async function run(yaml: string, job?: string) {
  const plan = compilePlan({ text: yaml, file: 'k8s.yml', ...(job ? { job } : {}) });
  const handle = await startBuild(client, { plan, taskQueue });
  return { handle, outcome: awaitBuild(handle) };
}

const podsOf = (buildId: string) => [...seen.values()].filter((p) => p.metadata?.labels?.[LABELS.build] === buildId);

test('a producer’s output reaches its consumer through the pods, and the build’s objects go with it', async () => {
  const { handle, outcome } = await run(`
plan:
- ${task('produce', {}, { outputs: [{ name: 'out' }] })}
- ${task('consume', { tags: ['gpu'] }, { inputs: [{ name: 'out' }] })}
`);
  expect(await outcome).toMatchObject({ status: 'succeeded' });
  const pods = podsOf(handle.workflowId);
  expect(pods.map((p) => p.metadata?.annotations?.[ANNOTATIONS.task]).sort()).toEqual(['consume', 'produce']);
  const consumer = pods.find((p) => p.metadata?.annotations?.[ANNOTATIONS.task] === 'consume')!;
  expect(consumer.spec?.nodeSelector).toEqual({ 'causeway.dev/tag-gpu': 'true' });
  const inputs = JSON.parse(consumer.spec!.initContainers![0].env!.find((e) => e.name === 'CAUSEWAY_INPUTS')!.value!);
  expect(inputs).toEqual([
    { name: 'out', path: 'out', url: expect.stringMatching(/^http:\/\/198\.18\.(1[6-9]|2\d|3[01])\.\d+:7788\/artifacts\/out$/) },
  ]);
  // the containers' logs reached NATS like a local step's output
  const logs = await collectLogs(nc, handle.workflowId);
  expect([...logs.values()]).toEqual([FAKE_TASK_LOG.map((l) => `${l}\n`).join(''), FAKE_TASK_LOG.map((l) => `${l}\n`).join('')]);
  // finishBuild deleted the anchor: the garbage collector (and KWOK as kubelet) remove the rest
  await until(async () => {
    try {
      await core.readNamespacedConfigMap({ name: anchorName(handle.workflowId), namespace });
      return false;
    } catch (err) {
      return (err as { code?: number }).code === 404;
    }
  }, 'anchor deletion');
  await until(
    async () => (await core.listNamespacedPod({ namespace, labelSelector: `${LABELS.build}=${handle.workflowId}` })).items.length === 0,
    'pods of the build gone',
    60_000,
  );
});

test('a credential a step’s params resolve stays out of its pod spec: a Secret of the step holds it, and goes with the build', async () => {
  const { handle, outcome } = await run(`
var_sources:
- {name: vs, type: dummy, config: {vars: {pw: k8s-s3cret-value}}}
plan:
- ${task('creds', { params: { PW: '((vs:pw))', URL: 'https://u:((vs:pw))@db', PLAIN: 'hello', HANG: '1' } })}
`);
  await until(async () => podsOf(handle.workflowId).length === 1, 'the step’s pod');
  const [pod] = podsOf(handle.workflowId);
  expect(JSON.stringify(pod)).not.toContain('k8s-s3cret-value');
  const secret = await core.readNamespacedSecret({ name: `${pod.metadata!.name}-env`, namespace });
  const decoded = Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
  expect(decoded).toEqual({ PW: 'k8s-s3cret-value', URL: 'https://u:k8s-s3cret-value@db' });
  // The fake kubelet leaves HANG pods running: end this one as a kubelet would.
  await until(async () => (await core.readNamespacedPod({ name: pod.metadata!.name!, namespace })).status?.phase === 'Running', 'running');
  await takeOverPod(core, namespace, pod.metadata!.name!);
  await patchPodStatus(core, namespace, pod.metadata!.name!, {
    containerStatuses: [{ name: CONTAINERS.task, image: 'busybox', imageID: '', ready: false, restartCount: 0, state: terminated(0) }],
  });
  expect(await outcome).toMatchObject({ status: 'succeeded' });
  const env = Object.fromEntries(pod.spec!.containers[0].env!.map((e) => [e.name, e.value ?? e.valueFrom]));
  const secretName = `${pod.metadata!.name}-env`;
  expect(env).toMatchObject({
    PLAIN: 'hello',
    PW: { secretKeyRef: { name: secretName, key: 'PW' } },
    URL: { secretKeyRef: { name: secretName, key: 'URL' } },
  });
  // Owned by the build's anchor, as the pod: finishBuild's deletion of it removes the Secret too.
  await until(
    async () => {
      try {
        await core.readNamespacedSecret({ name: secretName, namespace });
        return false;
      } catch (err) {
        return (err as { code?: number }).code === 404;
      }
    },
    'the step’s env Secret deleted with the build',
    60_000,
  );
});

test('a producer pod is deleted as soon as its last reader ended, while the build goes on', async () => {
  const { handle, outcome } = await run(`
plan:
- ${task('produce', {}, { outputs: [{ name: 'out' }, { name: 'unread' }] })}
- ${task('read', {}, { inputs: [{ name: 'out' }] })}
- ${task('later', { params: { HANG: 1 } })}
`);
  const byTask = (name: string) => podsOf(handle.workflowId).find((p) => p.metadata?.annotations?.[ANNOTATIONS.task] === name);
  const later = await until(async () => byTask('later'), 'the last step’s pod');
  const producer = byTask('produce')!.metadata!.name!;
  // The last step has not ended, so the build has not: the producer went because nothing reads `out` any more.
  await until(async () => {
    try {
      return !!(await core.readNamespacedPod({ name: producer, namespace })).metadata?.deletionTimestamp;
    } catch (err) {
      return (err as { code?: number }).code === 404;
    }
  }, 'the producer pod’s deletion');
  await takeOverPod(core, namespace, later.metadata!.name!);
  await patchPodStatus(core, namespace, later.metadata!.name!, {
    containerStatuses: [{ name: CONTAINERS.task, image: 'busybox', imageID: '', ready: false, restartCount: 0, state: terminated(0) }],
  });
  expect(await outcome).toMatchObject({ status: 'succeeded' });
  // Summaries are payloads like any other: the codec encrypts them.
  const codec = new AesGcmPayloadCodec(loadCodecKeys({ home })!);
  const released: string[] = [];
  for (const event of (await handle.fetchHistory()).events ?? []) {
    const summary = event.userMetadata?.summary;
    if (!event.activityTaskScheduledEventAttributes || !summary) continue;
    const [plain] = await codec.decode([summary as Parameters<typeof codec.decode>[0][number]]);
    released.push(defaultPayloadConverter.fromPayload<string>(plain));
  }
  expect(released.filter((s) => s.startsWith('release'))).toEqual(['release out, unread']);
});

test("a get of a base type (git) runs its check in a pod of the type's image, which CAUSEWAY_RESOURCE_IMAGES names", async () => {
  const { handle, outcome } = await run(
    `
resources: [{name: repo, type: git, source: {uri: 'https://git.test/r.git', branch: main}}]
jobs: [{name: j, plan: [{get: repo}]}]
`,
    'j',
  );
  // The fake kubelet's pods write no check response: the build ends without a version.
  await outcome.catch(() => undefined);
  const check = podsOf(handle.workflowId).find((p) => p.metadata?.annotations?.[ANNOTATIONS.task] === 'check repo');
  const container = check?.spec?.containers.find((c) => c.name === CONTAINERS.task);
  expect(container?.image).toBe('registry.test:5000/causeway/resource-git:latest');
  expect(container?.args?.slice(2)).toEqual(['/opt/resource/check']);
});

test('the kubernetes worker is in the worker registry with its runtime and tags', async () => {
  const kv = await workerBucket(nc);
  const record = WorkerRecord.parse((await kv.get(worker.name))?.json());
  expect(record).toMatchObject({ name: worker.name, runtime: 'kubernetes', state: 'running', tags: ['gpu', 'nowhere'] });
});

test('a non-zero exit fails the build; an unschedulable step errors it with the scheduler’s reason', async () => {
  const failed = await run(`plan:\n- ${task('fails', { params: { EXIT_CODE: 2 } })}\n`);
  const outcome = await failed.outcome;
  expect(outcome.status).toBe('failed');
  expect(outcome.summary?.steps ?? []).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'fails', state: 'failed' })]));

  const errored = await run(`plan:\n- ${task('nowhere', { tags: ['nowhere'] })}\n`);
  const e = await errored.outcome;
  expect(e.status).toBe('errored');
  expect(JSON.stringify(e)).toMatch(/unschedulable: 0\/2 nodes are available/);
});

test('abort deletes the running step’s pod', async () => {
  const { handle, outcome } = await run(`plan:\n- ${task('hangs', { params: { HANG: 1 } })}\n`);
  const pod = await until(async () => podsOf(handle.workflowId)[0], 'the step pod');
  await until(
    async () => (await core.readNamespacedPod({ name: pod.metadata!.name!, namespace })).status?.phase === 'Running',
    'pod running',
  );
  await handle.cancel();
  expect((await outcome).status).toBe('aborted');
  await until(
    async () => {
      try {
        await core.readNamespacedPod({ name: pod.metadata!.name!, namespace });
        return false;
      } catch (err) {
        return (err as { code?: number }).code === 404;
      }
    },
    'pod deletion',
    60_000,
  );
});

test('the reconciler deletes what a terminated build left (no teardown ran) and leaves running builds alone', async () => {
  const terminatedBuild = await run(`plan:\n- ${task('left-behind', { params: { HANG: 1 } })}\n`);
  const runningBuild = await run(`plan:\n- ${task('still-running', { params: { HANG: 1 } })}\n`);
  const leftPod = await until(async () => podsOf(terminatedBuild.handle.workflowId)[0], 'the left-behind pod');
  await until(async () => podsOf(runningBuild.handle.workflowId)[0], 'the running pod');
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

test('a worker that stops hands its running step over: the next worker with its name re-attaches to the pod', async () => {
  const name = `k8s-handover-${randomUUID().slice(0, 8)}`;
  const queue = `k8s-handover-${randomUUID()}`;
  const start = () =>
    startKubernetesWorker({
      temporalAddress: endpoints.temporal,
      namespace: 'default',
      natsUrl: endpoints.nats,
      home,
      name,
      taskQueue: queue,
      logMaxAgeSeconds: 3600,
      kubernetes: { namespace, kubeConfig: adminKubeConfig(), graceSeconds: 1, logDrainMs: 1000 },
      drainMs: 500,
      workflowBundle: bundle,
      log: pino({ level: 'error' }),
    });
  const first = await start();
  const plan = compilePlan({ text: `plan:\n- ${task('handed-over', { params: { HANG: 1 } })}\n`, file: 'k8s.yml' });
  const handle = await startBuild(client, { plan, taskQueue: queue });
  const outcome = awaitBuild(handle);
  const pod = await until(async () => podsOf(handle.workflowId)[0], 'the step pod');
  const podName = pod.metadata!.name!;
  await until(async () => (await core.readNamespacedPod({ name: podName, namespace })).status?.phase === 'Running', 'pod running');

  await first.shutdown(); // drain over: the step is handed over, not killed
  const kept = await core.readNamespacedPod({ name: podName, namespace });
  expect(kept.metadata?.deletionTimestamp).toBeUndefined();
  expect(kept.metadata?.uid).toBe(pod.metadata?.uid);

  const second = await start();
  try {
    // the retried activity re-attached (no second pod); now the task ends, as its kubelet reports
    await until(async () => second.runtime.calls.watch > 0, 'the second worker watching the pod');
    expect(second.runtime.calls.create).toBe(0);
    await takeOverPod(core, namespace, podName);
    await patchPodStatus(core, namespace, podName, {
      containerStatuses: [{ name: CONTAINERS.task, image: 'busybox', imageID: '', ready: false, restartCount: 0, state: terminated(0) }],
    });
    expect(await outcome).toMatchObject({ status: 'succeeded' });
    expect(podsOf(handle.workflowId)).toHaveLength(1);
  } finally {
    await second.shutdown();
  }
});

test('a step with services: each a pod behind a Service, named by its DNS name in the step and in a sibling, its log in NATS, teardown removes both', async () => {
  const image = { type: 'registry-image', source: { repository: 'postgres', tag: '17' } };
  const db = {
    name: 'db',
    config: {
      image_resource: image,
      run: { path: 'docker-entrypoint.sh', args: ['postgres'] },
      ports: [{ name: 'pg', number: 5432 }],
      startup_probe: { run: { path: 'pg_isready', args: [] } },
    },
  };
  // a sibling named in ((.svc:...)): the workflow knows only local addresses before the Services exist
  const web = {
    name: 'web',
    config: {
      image_resource: image,
      run: { path: 'web', args: ['--db', '((.svc:db.address))'] },
      params: { DB_HOST: '((.svc:db.host))' },
      ports: [8080],
    },
  };
  // the step runs until the services' logs are in NATS, then ends as its kubelet reports
  const { handle, outcome } = await run(`plan:\n- ${task('uses-db', { services: [db, web], params: { HANG: 1 } })}\n`);
  const want = FAKE_TASK_LOG.map((l) => `${l}\n`).join('');
  const logs = await until(async () => {
    const l = await collectServiceLogs(nc, handle.workflowId);
    return [l.get('plan.0/db'), l.get('plan.0/web')].every((t) => t?.includes(want)) && l;
  }, 'the services’ logs in NATS');
  // Causeway's notes go with the output, as on the local runtime
  expect(logs.get('plan.0/db')).toMatch(/^service db started: pod cw-svc-db-\w+ behind Service cw-svc-db-\w+\.\S+\.svc, ports: pg 5432$/m);
  const stepPod = await until(
    async () => podsOf(handle.workflowId).find((p) => p.metadata?.labels?.[LABELS.component] === 'step'),
    'the step pod',
  );
  await takeOverPod(core, namespace, stepPod.metadata!.name!);
  await patchPodStatus(core, namespace, stepPod.metadata!.name!, {
    containerStatuses: [{ name: CONTAINERS.task, image: 'busybox', imageID: '', ready: false, restartCount: 0, state: terminated(0) }],
  });
  expect(await outcome).toMatchObject({ status: 'succeeded' });

  const env = Object.fromEntries(stepPod.spec!.containers.find((c) => c.name === CONTAINERS.task)!.env!.map((e) => [e.name, e.value]));
  expect(env.DB_SERVICE_HOST).toMatch(new RegExp(`^cw-svc-db-[0-9a-f]{12}\\.${namespace}\\.svc$`));
  expect(env.DB_SERVICE_PORT).toBe('5432');
  expect(env.DB_SERVICE_PORT_PG).toBe('5432');
  const servicePods = podsOf(handle.workflowId).filter((p) => p.metadata?.labels?.[LABELS.component] === 'service');
  const dbPod = servicePods.find((p) => p.metadata?.annotations?.['causeway.dev/service-name'] === 'db')!;
  expect(env.DB_SERVICE_HOST!.split('.')[0]).toBe(dbPod.metadata!.name);
  // the sibling got the db's Service, as the step did
  const webPod = servicePods.find((p) => p.metadata?.annotations?.['causeway.dev/service-name'] === 'web')!;
  const webContainer = webPod.spec!.containers[0];
  expect(webContainer.args).toEqual(['--db', `${env.DB_SERVICE_HOST}:5432`]);
  expect(webContainer.env).toContainEqual({ name: 'DB_HOST', value: env.DB_SERVICE_HOST });
  // teardown stopped them, then the build's end removed everything
  await until(
    async () => (await core.listNamespacedPod({ namespace, labelSelector: `${LABELS.build}=${handle.workflowId}` })).items.length === 0,
    'pods of the build gone',
    60_000,
  );
  await until(
    async () => (await core.listNamespacedService({ namespace, labelSelector: `${LABELS.build}=${handle.workflowId}` })).items.length === 0,
    'services of the build gone',
    60_000,
  );
});
