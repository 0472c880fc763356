// Whole builds on the real node: a real Temporal dev server and NATS, a kubernetes worker on
// this host, and step pods that run real containers from the local registry: the default task
// image, the agent image as input-fetcher and output-streamer, PostgreSQL as a service. A step
// that must run until the test has seen something waits at a Gate (./gate.ts).
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import pino from 'pino';
import type { CoreV1Api } from '../../../activities/runtime/kubernetes/client';
import { ANNOTATIONS, LABELS, anchorName } from '../../../activities/runtime/kubernetes/pod';
import { awaitBuild, startBuild } from '../../../common/build-client';
import { collectLogs, collectServiceLogs, readBuild } from '../../../common/build-log';
import { AesGcmPayloadCodec, loadCodecKeys } from '../../../common/codec';
import { compilePlan } from '../../../schemas';
import { startKubernetesWorker } from '../../../workers/kubernetes';
import { startBuildEnv, type BuildEnv } from '../setup/builds';
import { adminCore, adminKubeConfig, freshNamespace, recordPods, testCluster, until } from '../setup/env';
import { Gate } from './gate';

jest.setTimeout(300_000);

let core: CoreV1Api;
let namespace: string;
let env: BuildEnv;
let client: Client;
let pods: ReturnType<typeof recordPods> | undefined;
let gate: Gate;

beforeAll(async () => {
  core = adminCore();
  namespace = await freshNamespace(core, 'node-build');
  const { images } = testCluster().node!;
  env = await startBuildEnv('k8s-node-build', {
    // `nowhere`: a tag the worker accepts and no node has (unschedulable)
    tags: ['nowhere'],
    kubernetes: {
      namespace,
      kubeConfig: adminKubeConfig(),
      defaultImage: images.task,
      agentImage: images.agent,
      graceSeconds: 2,
      unschedulableGraceMs: 500,
    },
  });
  client = env.client;
  gate = await new Gate().listen();
  pods = recordPods(core, namespace);
});

afterAll(async () => {
  pods?.stop();
  await gate?.close();
  await env?.stop();
  await core?.deleteNamespace({ name: namespace }).catch(() => undefined);
});

async function run(text: string, file: string, vars: Record<string, string> = {}) {
  const plan = compilePlan({ text, file, vars });
  const handle = await startBuild(client, { plan, taskQueue: env.taskQueue });
  return { handle, outcome: await awaitBuild(handle) };
}

/** The build's step logs with Causeway's own notes (the runtime's OOMKilled line is one). */
async function logsWithNotes(buildId: string): Promise<string> {
  let out = '';
  for await (const r of readBuild(env.nc, buildId, { follow: false })) if (r.kind === 'log') out += Buffer.from(r.data).toString('utf8');
  return out;
}

const podsOf = (buildId: string) => [...(pods?.seen.values() ?? [])].filter((p) => p.metadata?.labels?.[LABELS.build] === buildId);

test('examples/ci.yml succeeds unchanged, every step in its own pod, outputs moving pod to pod through the agents', async () => {
  const file = path.join(__dirname, '..', '..', '..', 'examples', 'ci.yml');
  const { handle, outcome } = await run(fs.readFileSync(file, 'utf8'), file, { version: '1.2.3' });
  expect(outcome).toMatchObject({ status: 'succeeded' });
  const logs = [...(await collectLogs(env.nc, handle.workflowId)).values()].join('');
  expect(logs).toContain('checked out 2 files');
  expect(logs).toContain('ok - add 2 3 = 5');
  // The version comes from a load_var with reveal: true, which the log shows.
  expect(logs).toContain('add-1.2.3-darwin.tgz');
  expect(logs).toContain('packaged version 1.2.3 for linux, darwin and windows');
  expect(logs).toContain('cleanup runs whatever happened');
  // checkout, lint, unit-test, version, 3 × package, announce, cleanup: one pod each
  expect(podsOf(handle.workflowId).length).toBeGreaterThanOrEqual(9);
  // finishBuild deleted the anchor: the garbage collector and the kubelet remove the rest
  await until(
    async () => (await core.readNamespacedConfigMap({ name: anchorName(handle.workflowId), namespace }).catch(notFound)) === null,
    'anchor deletion',
    60_000,
  );
  await until(
    async () => (await core.listNamespacedPod({ namespace, labelSelector: `${LABELS.build}=${handle.workflowId}` })).items.length === 0,
    'pods of the build gone',
    120_000,
  );
});

/** null for a 404 (the object is gone), the error otherwise. */
function notFound(err: unknown): null {
  if ((err as { code?: number }).code === 404) return null;
  throw err;
}

const byTask = (buildId: string, task: string) => podsOf(buildId).find((p) => p.metadata?.annotations?.[ANNOTATIONS.task] === task);

test('a credential a step’s params resolve reaches the container through a Secret of the step, never the pod spec, and goes with the build', async () => {
  const { handle, outcome } = await run(
    `
var_sources:
- {name: vs, type: dummy, config: {vars: {pw: k8s-s3cret-value}}}
plan:
- task: creds
  params: {PW: '((vs:pw))', URL: 'https://u:((vs:pw))@db', PLAIN: hello}
  config:
    platform: linux
    # digests, so neither the pod spec nor the log holds the values the test looks for
    run: {path: sh, args: [-c, 'printf %s "$PW" | sha256sum; printf %s "$URL" | sha256sum; echo "plain $PLAIN"']}
`,
    'creds.yml',
  );
  expect(outcome).toMatchObject({ status: 'succeeded' });
  const digest = (v: string) => createHash('sha256').update(v).digest('hex');
  expect([...(await collectLogs(env.nc, handle.workflowId)).values()].join('')).toBe(
    `${digest('k8s-s3cret-value')}  -\n${digest('https://u:k8s-s3cret-value@db')}  -\nplain hello\n`,
  );
  const pod = byTask(handle.workflowId, 'creds')!;
  expect(JSON.stringify(pod)).not.toContain('k8s-s3cret-value');
  const secretName = `${pod.metadata!.name}-env`;
  const podEnv = Object.fromEntries(pod.spec!.containers[0].env!.map((e) => [e.name, e.value ?? e.valueFrom]));
  expect(podEnv).toMatchObject({
    PLAIN: 'hello',
    PW: { secretKeyRef: { name: secretName, key: 'PW' } },
    URL: { secretKeyRef: { name: secretName, key: 'URL' } },
  });
  // owned by the build's anchor, as the pod: finishBuild's deletion of it removes the Secret too
  await until(
    async () => (await core.readNamespacedSecret({ name: secretName, namespace }).catch(notFound)) === null,
    'the step’s env Secret deleted',
    60_000,
  );
});

test('a producer pod is deleted as soon as its last reader ended, while the build goes on', async () => {
  const built = run(
    `
plan:
- task: produce
  config: {platform: linux, outputs: [{name: out}, {name: unread}], run: {path: sh, args: [-c, 'echo x > out/f']}}
- task: read
  config: {platform: linux, inputs: [{name: out}], run: {path: cat, args: [out/f]}}
- task: later
  config: {platform: linux, run: {path: sh, args: [-c, '${gate.waitFor('later')}']}}
`,
    'release.yml',
  );
  const later = await until(
    async () =>
      [...(pods?.seen.values() ?? [])].find(
        (p) => p.metadata?.annotations?.[ANNOTATIONS.task] === 'later' && p.status?.phase === 'Running',
      ),
    'the last step running',
    120_000,
  );
  const buildId = later.metadata!.labels![LABELS.build];
  const producer = byTask(buildId, 'produce')!.metadata!.name!;
  // The last step has not ended, so the build has not: the producer went because nothing reads `out` any more.
  await until(
    async () => {
      const p = await core.readNamespacedPod({ name: producer, namespace }).catch(notFound);
      return p === null || !!p.metadata?.deletionTimestamp;
    },
    'the producer pod’s deletion',
    60_000,
  );
  gate.open('later');
  const { handle, outcome } = await built;
  expect(outcome).toMatchObject({ status: 'succeeded' });
  // Summaries are payloads like any other: the codec encrypts them.
  const codec = new AesGcmPayloadCodec(loadCodecKeys({ home: env.home })!);
  const released: string[] = [];
  for (const event of (await handle.fetchHistory()).events ?? []) {
    const summary = event.userMetadata?.summary;
    if (!event.activityTaskScheduledEventAttributes || !summary) continue;
    const [plain] = await codec.decode([summary as Parameters<typeof codec.decode>[0][number]]);
    released.push(defaultPayloadConverter.fromPayload<string>(plain));
  }
  expect(released.filter((s) => s.startsWith('release'))).toEqual(['release out, unread']);
});

test('a non-zero exit fails the build; a tag no node has errors it with the scheduler’s reason', async () => {
  const failed = await run(`plan:\n- {task: fails, config: {platform: linux, run: {path: sh, args: [-c, 'exit 2']}}}\n`, 'fails.yml');
  expect(failed.outcome.status).toBe('failed');
  expect(failed.outcome.summary?.steps ?? []).toEqual(
    expect.arrayContaining([expect.objectContaining({ name: 'fails', state: 'failed' })]),
  );

  const errored = await run(`plan:\n- {task: nowhere, tags: [nowhere], config: {platform: linux, run: {path: 'true'}}}\n`, 'nowhere.yml');
  expect(errored.outcome.status).toBe('errored');
  expect(JSON.stringify(errored.outcome)).toMatch(/unschedulable: 0\/1 nodes are available/);
});

test('a worker that stops hands its running step over: the next worker with its name re-attaches to the running pod', async () => {
  const name = `k8s-handover-${randomUUID().slice(0, 8)}`;
  const queue = `k8s-handover-${randomUUID()}`;
  const { images } = testCluster().node!;
  const start = () =>
    startKubernetesWorker({
      temporalAddress: env.endpoints.temporal,
      namespace: 'default',
      natsUrl: env.endpoints.nats,
      home: env.home,
      name,
      taskQueue: queue,
      logMaxAgeSeconds: 3600,
      kubernetes: { namespace, kubeConfig: adminKubeConfig(), defaultImage: images.task, agentImage: images.agent, graceSeconds: 1 },
      drainMs: 500,
      workflowBundle: env.bundle,
      log: pino({ level: 'error' }),
    });
  const first = await start();
  const plan = compilePlan({
    text: `plan:\n- {task: handed-over, config: {platform: linux, run: {path: sh, args: [-c, 'echo started; ${gate.waitFor('handover')}; echo ended']}}}\n`,
    file: 'handover.yml',
  });
  const handle = await startBuild(client, { plan, taskQueue: queue });
  const outcome = awaitBuild(handle);
  const pod = await until(
    async () => podsOf(handle.workflowId).find((p) => p.status?.phase === 'Running'),
    'the step pod running',
    120_000,
  );
  const podName = pod.metadata!.name!;

  await first.shutdown(); // drain over: the step is handed over, not killed
  const kept = await core.readNamespacedPod({ name: podName, namespace });
  expect(kept.metadata?.deletionTimestamp).toBeUndefined();
  expect(kept.metadata?.uid).toBe(pod.metadata?.uid);

  const second = await start();
  try {
    await until(async () => second.runtime.calls.watch > 0, 'the second worker watching the pod', 60_000);
    expect(second.runtime.calls.create).toBe(0);
    gate.open('handover');
    expect(await outcome).toMatchObject({ status: 'succeeded' });
    expect(second.runtime.calls.create).toBe(0);
    expect(podsOf(handle.workflowId)).toHaveLength(1);
    const logs = [...(await collectLogs(env.nc, handle.workflowId)).values()].join('');
    expect(logs.match(/started/g)).toHaveLength(1);
    expect(logs).toContain('ended');
  } finally {
    await second.shutdown();
  }
});

test('a step with services: each a pod behind a Service, named by its DNS name in the step and in a sibling, its log in NATS, teardown removes both', async () => {
  const serve = (port: number) => `exec python3 -m http.server ${port} >/dev/null 2>&1`;
  const [repository, tag] = testCluster().node!.images.task.split(/:(?=[^:]+$)/);
  const image = `{type: registry-image, source: {repository: "${repository}", tag: "${tag}"}}`;
  const { handle, outcome } = await run(
    `
plan:
- task: uses-db
  services:
  - name: db
    config:
      image_resource: ${image}
      run: {path: sh, args: [-c, 'echo db says hello; ${serve(5432)}']}
      ports: [{name: pg, number: 5432}]
  # a sibling named in ((.svc:...)): the workflow knows only local addresses before the Services exist
  - name: web
    config:
      image_resource: ${image}
      params: {DB_HOST: '((.svc:db.host))'}
      run: {path: sh, args: [-c, 'echo "web knows db at $1 and $DB_HOST"; ${serve(8080)}', sh, '((.svc:db.address))']}
      ports: [8080]
  config:
    platform: linux
    run: {path: sh, args: [-c, 'echo "step sees $DB_SERVICE_HOST:$DB_SERVICE_PORT_PG"; curl -sf -o /dev/null http://$WEB_SERVICE_HOST:8080/ && echo web answers']}
`,
    'services.yml',
  );
  expect(outcome).toMatchObject({ status: 'succeeded' });
  const stepLog = [...(await collectLogs(env.nc, handle.workflowId)).values()].join('');
  const m = new RegExp(`step sees (cw-svc-db-[0-9a-f]{12}\\.${namespace}\\.svc):5432\nweb answers\n`).exec(stepLog);
  expect(m).not.toBeNull();
  const dbHost = m![1];
  const servicePods = podsOf(handle.workflowId).filter((p) => p.metadata?.labels?.[LABELS.component] === 'service');
  const dbPod = servicePods.find((p) => p.metadata?.annotations?.['causeway.dev/service-name'] === 'db')!;
  expect(dbHost.split('.')[0]).toBe(dbPod.metadata!.name);
  // the services' output, with Causeway's notes, reached NATS as a local service's does
  const logs = await collectServiceLogs(env.nc, handle.workflowId);
  expect(logs.get('plan.0/db')).toMatch(/^service db started: pod cw-svc-db-\w+ behind Service cw-svc-db-\w+\.\S+\.svc, ports: pg 5432$/m);
  expect(logs.get('plan.0/db')).toContain('db says hello\n');
  expect(logs.get('plan.0/web')).toContain(`web knows db at ${dbHost}:5432 and ${dbHost}\n`);
  // teardown stopped them, then the build's end removed everything
  await until(
    async () => (await core.listNamespacedPod({ namespace, labelSelector: `${LABELS.build}=${handle.workflowId}` })).items.length === 0,
    'pods of the build gone',
    120_000,
  );
  await until(
    async () => (await core.listNamespacedService({ namespace, labelSelector: `${LABELS.build}=${handle.workflowId}` })).items.length === 0,
    'services of the build gone',
    60_000,
  );
});

test('PostgreSQL as a service: its pg_isready startup probe run by the kubelet, reached by its Service DNS name', async () => {
  const { images } = testCluster().node!;
  const [repository, tag] = images.postgres.split(/:(?=[^:]+$)/);
  const pg = `{type: registry-image, source: {repository: "${repository}", tag: "${tag}"}}`;
  const { handle, outcome } = await run(
    `
plan:
- task: query
  services:
  - name: db
    config:
      image_resource: ${pg}
      run:
        path: sh
        # initdb's trust covers loopback only: the step connects from the pod network.
        args: [-c, 'initdb -D "$PWD/data" -A trust -U postgres >/dev/null && echo "host all all 0.0.0.0/0 trust" >> "$PWD/data/pg_hba.conf" && exec postgres -D "$PWD/data" -h "*" -p 5432 -k /tmp']
      ports: [5432]
      startup_probe:
        run: {path: pg_isready, args: [-h, 127.0.0.1, -p, "5432", -U, postgres]}
        period_seconds: 1
        failure_threshold: 120
  config:
    platform: linux
    image_resource: ${pg}
    run:
      path: sh
      args: [-c, 'echo "db at $DB_SERVICE_HOST"; psql -h "$DB_SERVICE_HOST" -U postgres -tA -c "select 40 + 2"']
`,
    'pg.yml',
  );
  expect(outcome).toMatchObject({ status: 'succeeded' });
  const logs = [...(await collectLogs(env.nc, handle.workflowId)).values()].join('');
  expect(logs).toMatch(/db at cw-svc-db-[0-9a-f]+/);
  expect(logs).toContain('42');
});

test('a task over its container_limits.memory is OOM-killed and reported as such', async () => {
  const { handle, outcome } = await run(
    `
plan:
- task: hog
  config:
    platform: linux
    container_limits: {memory: 67108864}
    run: {path: python3, args: [-c, 'b = bytearray(512 * 1024 * 1024); print("allocated")']}
`,
    'oom.yml',
  );
  expect(outcome).toMatchObject({ status: 'failed' });
  const logs = await logsWithNotes(handle.workflowId);
  expect(logs).toContain('container task was OOMKilled: it used more memory than its limit (67108864 bytes');
  expect(logs).not.toContain('allocated');
});

test('a task with a non-root run.user writes its outputs and caches, and the next step reads them', async () => {
  const { handle, outcome } = await run(
    `
plan:
- task: write
  config:
    platform: linux
    outputs: [{name: out}]
    caches: [{path: cache}]
    run: {user: "1000", path: sh, args: [-c, 'id -u; echo written > out/file && echo cached > cache/c && cat cache/c']}
- task: read
  config:
    platform: linux
    inputs: [{name: out}]
    run: {path: cat, args: [out/file]}
`,
    'user.yml',
  );
  // the message in the failure: this build errored once in a whole run at load ~13 and passed alone
  expect({ status: outcome.status, message: outcome.message }).toEqual({ status: 'succeeded', message: undefined });
  const logs = [...(await collectLogs(env.nc, handle.workflowId)).values()].join('');
  expect(logs).toContain('1000\ncached\n');
  expect(logs).toContain('written\n');
});

test('a service gets its inputs, and is ready only once every declared port accepts connections', async () => {
  const { images } = testCluster().node!;
  const [repository, tag] = images.task.split(/:(?=[^:]+$)/);
  const { handle, outcome } = await run(
    `
plan:
- task: make-site
  config:
    platform: linux
    outputs: [{name: site}]
    run: {path: sh, args: [-c, 'echo hello from an input > site/index.html']}
- task: read
  services:
  - name: web
    config:
      image_resource: {type: registry-image, source: {repository: "${repository}", tag: "${tag}"}}
      inputs: [{name: site}]
      ports: [{name: default, number: 8080}, {name: admin, number: 8081}]
      # The admin port opens 3 s after the first: ready means both.
      run: {path: sh, args: [-c, 'python3 -m http.server 8080 --directory site & sleep 3; exec python3 -m http.server 8081']}
  config:
    platform: linux
    run: {path: sh, args: [-c, 'curl -sf http://$WEB_SERVICE_HOST:8080/index.html && curl -sf -o /dev/null -w "admin %{http_code}\\n" http://$WEB_SERVICE_HOST:8081/']}
`,
    'svc-inputs.yml',
  );
  expect(outcome).toMatchObject({ status: 'succeeded' });
  const logs = [...(await collectLogs(env.nc, handle.workflowId)).values()].join('');
  expect(logs).toContain('hello from an input\nadmin 200\n');
});

test('a service whose second port never opens fails, naming that port', async () => {
  const { images } = testCluster().node!;
  const [repository, tag] = images.task.split(/:(?=[^:]+$)/);
  const { handle, outcome } = await run(
    `
plan:
- task: read
  services:
  - name: web
    config:
      image_resource: {type: registry-image, source: {repository: "${repository}", tag: "${tag}"}}
      ports: [{name: default, number: 8080}, {name: admin, number: 8081}]
      run: {path: python3, args: [-m, http.server, "8080"]}
  config:
    platform: linux
    run: {path: echo, args: [never runs]}
`,
    'svc-port.yml',
  );
  expect(outcome).toMatchObject({ status: 'errored' });
  expect(JSON.stringify(outcome)).toMatch(/service web: not ready: ports not accepting connections at [\d.]+: admin 8081 \(ECONNREFUSED\)/);
  expect(await logsWithNotes(handle.workflowId)).not.toContain('never runs');
});
