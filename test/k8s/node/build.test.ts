// Whole builds on the real node: a real Temporal dev server and NATS, a kubernetes worker on
// this host, and step pods that run real containers from the local registry: the default task
// image, the agent image as input-fetcher and output-streamer, PostgreSQL as a service.
import fs from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { CoreV1Api, V1Pod } from '../../../activities/runtime/kubernetes/client';
import { LABELS } from '../../../activities/runtime/kubernetes/pod';
import { awaitBuild, startBuild } from '../../../common/build-client';
import { collectLogs, readBuild } from '../../../common/build-log';
import { compilePlan } from '../../../schemas';
import { startBuildEnv, type BuildEnv } from '../setup/builds';
import { adminCore, adminKubeConfig, freshNamespace, testCluster } from '../setup/env';

jest.setTimeout(300_000);

let core: CoreV1Api;
let namespace: string;
let env: BuildEnv;
let client: Client;
let watching: NodeJS.Timeout;
/** every pod of the namespace seen while the builds ran, by name */
const seen = new Map<string, V1Pod>();

beforeAll(async () => {
  core = adminCore();
  namespace = await freshNamespace(core, 'node-build');
  const { images } = testCluster().node!;
  env = await startBuildEnv('k8s-node-build', {
    kubernetes: { namespace, kubeConfig: adminKubeConfig(), defaultImage: images.task, agentImage: images.agent, graceSeconds: 2 },
  });
  client = env.client;
  watching = setInterval(() => {
    void core
      .listNamespacedPod({ namespace })
      .then((l) => l.items.forEach((p) => seen.set(p.metadata!.name!, p)))
      .catch(() => undefined);
  }, 200);
});

afterAll(async () => {
  clearInterval(watching);
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

const podsOf = (buildId: string) => [...seen.values()].filter((p) => p.metadata?.labels?.[LABELS.build] === buildId);

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
  expect(outcome).toMatchObject({ status: 'succeeded' });
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
