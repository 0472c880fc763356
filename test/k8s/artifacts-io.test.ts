// Uploads (-i), exports (-o) and `file:` configs on the kubernetes runtime, through whole
// builds (real Temporal, NATS and control plane). KWOK runs no containers, so the test plays
// kubelet honestly: for each step pod it runs the real agent from the pod's own spec — the
// input-fetcher (`fetchInputs`, with the pod's CAUSEWAY_INPUTS/MKDIRS and the token from the
// build's Secret) into a work dir of the test's, then "the task" (it writes the files its
// WRITE param lists), then the output-streamer (`serve`) on a loopback address that it
// reports as the pod's IP — and patches the pod's status as a kubelet would.
import fs from 'node:fs';
import type http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { randomInt, randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import YAML from 'yaml';
import { fetchInputs, serve } from '../../agent/causeway-agent';
import { getDirectory, putDirectory, transferBucket, transferKeys } from '../../common/transfer';
import { paths } from '../../activities/deps';
import { podArtifact } from '../../activities/runtime/kubernetes/artifact-ref';
import { openPodArtifact } from '../../activities/runtime/kubernetes/artifacts';
import type { CoreV1Api, V1Container, V1Pod } from '../../activities/runtime/kubernetes/client';
import { ANNOTATIONS, CONTAINERS, LABELS, STREAMER_PORT } from '../../activities/runtime/kubernetes/pod';
import { awaitBuild, newBuildId, startBuild } from '../../common/build-client';
import { compilePlan } from '../../schemas';
import { KWOK_CUSTOM_STATUS_ANNOTATION } from './cluster';
import { startBuildEnv, type BuildEnv } from './setup/builds';
import { adminCore, adminKubeConfig, freshNamespace, patchPodStatus, takeOverPod, terminated, uniqueBuildId, until } from './setup/env';

jest.setTimeout(180_000);

let home: string;
let core: CoreV1Api;
let namespace: string;
let worker: BuildEnv['worker'];
let client: Client;
let nc: BuildEnv['nc'];
let taskQueue: string;
let kubelet: NodeJS.Timeout;
let scratch: string;

// Loopback addresses of our own (127.0.0.0/8 is all loopback), so the streamers' fixed port
// 7788 clashes with nothing another test run is using.
const NET = `127.${randomInt(16, 250)}.${randomInt(0, 255)}`;
const UPLOAD_IP = `${NET}.2`;
let nextHost = 10;

/** every step pod the fake kubelet ran: its spec and the work dir its containers shared */
const ran = new Map<string, { pod: V1Pod; workdir: string; fetchError?: string }>();
const handling = new Set<string>();
const servers: http.Server[] = [];

const envOf = (c: V1Container | undefined) =>
  Object.fromEntries((c?.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));

async function tokenOf(agent: V1Container): Promise<string> {
  const ref = agent.env!.find((e) => e.name === 'CAUSEWAY_ARTIFACT_TOKEN')!.valueFrom!.secretKeyRef!;
  const secret = await core.readNamespacedSecret({ name: ref.name!, namespace });
  return Buffer.from(secret.data![ref.key], 'base64').toString('utf8');
}

/** What the pod's kubelet and containers would do, with the real agent. */
async function runPod(pod: V1Pod): Promise<void> {
  const name = pod.metadata!.name!;
  await takeOverPod(core, namespace, name);
  const workdir = fs.mkdtempSync(path.join(scratch, `${name}-`));
  const record: { pod: V1Pod; workdir: string; fetchError?: string } = { pod, workdir };
  // A step with nothing to fetch or make has no fetcher, and without outputs no streamer.
  const fetcherSpec = pod.spec!.initContainers?.find((c) => c.name === CONTAINERS.fetcher);
  const token = fetcherSpec ? await tokenOf(fetcherSpec) : '';
  const task = envOf(pod.spec!.containers.find((c) => c.name === CONTAINERS.task));
  // A worker pod replaced since the upload (its emptyDir gone): the disk copy is lost.
  const buildId = pod.metadata!.labels![LABELS.build];
  if (task.DROP_WORKER_COPY) fs.rmSync(paths.inputs(home, buildId, task.DROP_WORKER_COPY), { recursive: true, force: true });
  // ... and the object store's copy expired
  if (task.DROP_STORED_COPY) await (await transferBucket(nc)).delete(transferKeys.input(buildId, task.DROP_STORED_COPY));
  const fetcher = envOf(fetcherSpec);
  if (fetcherSpec)
    try {
      await fetchInputs({
        workdir,
        token,
        inputs: JSON.parse(fetcher.CAUSEWAY_INPUTS),
        mkdirs: JSON.parse(fetcher.CAUSEWAY_MKDIRS),
        retryMs: 2000,
      });
    } catch (err) {
      record.fetchError = (err as Error).message;
      ran.set(name, record);
      await patchPodStatus(core, namespace, name, {
        initContainerStatuses: [
          {
            name: CONTAINERS.fetcher,
            image: 'agent',
            imageID: '',
            ready: false,
            restartCount: 0,
            state: { terminated: { exitCode: 1, reason: 'Error', message: record.fetchError } },
          },
        ],
      });
      return;
    }
  for (const [file, content] of Object.entries(JSON.parse(task.WRITE ?? '{}') as Record<string, string>)) {
    fs.mkdirSync(path.dirname(path.join(workdir, file)), { recursive: true });
    fs.writeFileSync(path.join(workdir, file), content);
  }
  const status: Record<string, unknown> = {
    containerStatuses: [
      {
        name: CONTAINERS.task,
        image: 'busybox',
        imageID: '',
        ready: false,
        restartCount: 0,
        state: terminated(Number(task.EXIT_CODE ?? 0)),
      },
    ],
  };
  const streamer = pod.spec!.containers.find((c) => c.name === CONTAINERS.streamer);
  if (streamer) {
    const env = envOf(streamer);
    const ip = `${NET}.${nextHost++}`;
    const { server } = await serve({
      workdir,
      token,
      outputs: JSON.parse(env.CAUSEWAY_OUTPUTS),
      port: Number(env.CAUSEWAY_PORT),
      host: ip,
    });
    servers.push(server);
    Object.assign(status, { podIP: ip, podIPs: [{ ip }] });
  }
  ran.set(name, record);
  await patchPodStatus(core, namespace, name, status);
}

async function playKubelet(): Promise<void> {
  const pods = await core.listNamespacedPod({ namespace, labelSelector: `${LABELS.component}=step` });
  for (const pod of pods.items) {
    const name = pod.metadata!.name!;
    if (handling.has(name) || pod.metadata?.deletionTimestamp || pod.status?.phase !== 'Running') continue;
    if (pod.metadata?.annotations?.[KWOK_CUSTOM_STATUS_ANNOTATION]) continue;
    handling.add(name);
    void runPod(pod).catch((err: Error) => process.stderr.write(`fake kubelet: ${name}: ${err.stack}\n`));
  }
}

let env: BuildEnv;

beforeAll(async () => {
  core = adminCore();
  namespace = await freshNamespace(core, 'artifacts');
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-k8s-io-pods-'));
  env = await startBuildEnv('k8s-io', {
    kubernetes: { namespace, kubeConfig: adminKubeConfig(), graceSeconds: 1, logDrainMs: 500, artifactRetryMs: 1000 },
    uploads: { host: UPLOAD_IP, port: 0 },
  });
  ({ home, taskQueue, worker, client, nc } = env);
  kubelet = setInterval(() => void playKubelet().catch(() => undefined), 100);
});

afterAll(async () => {
  clearInterval(kubelet);
  for (const server of servers) server.close();
  await env?.stop();
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

const image = { type: 'registry-image', source: { repository: 'busybox', tag: '1.37' } };
const run = { path: 'sh', args: ['-c', 'true'] };
const task = (name: string, extra: Record<string, unknown> = {}, config: Record<string, unknown> = {}) =>
  JSON.stringify({ task: name, config: { platform: 'linux', image_resource: image, run, ...config }, ...extra });
const writes = (files: Record<string, string>) => ({ WRITE: JSON.stringify(files) });

async function build(yaml: string, opts: { buildId?: string; uploads?: string[]; downloads?: string[] } = {}) {
  const plan = compilePlan({ text: yaml, file: 'k8s-io.yml' });
  const handle = await startBuild(client, { plan, taskQueue, ...opts });
  return { buildId: handle.workflowId, outcome: await awaitBuild(handle) };
}

const podOf = (buildId: string, taskName: string) =>
  [...ran.values()].find(
    (r) => r.pod.metadata?.labels?.[LABELS.build] === buildId && r.pod.metadata?.annotations?.[ANNOTATIONS.task] === taskName,
  );

function readTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile())
      out[path.relative(dir, path.join(entry.parentPath, entry.name))] = fs.readFileSync(path.join(entry.parentPath, entry.name), 'utf8');
  }
  return out;
}

test('-o: an output of a pod reaches the object store from the producer’s output-streamer', async () => {
  const { buildId, outcome } = await build(
    `plan:\n- ${task('produce', { params: writes({ 'out/a.txt': 'hello\n', 'out/sub/b.txt': 'bee\n', 'elsewhere.txt': 'not an output' }) }, { outputs: [{ name: 'out' }] })}\n`,
    { downloads: ['out'] },
  );
  expect(outcome).toMatchObject({ status: 'succeeded' });
  const dest = fs.mkdtempSync(path.join(scratch, 'export-'));
  expect(await getDirectory(await transferBucket(nc), transferKeys.output(buildId, 'out'), dest)).toBe(true);
  expect(readTree(dest)).toEqual({ 'a.txt': 'hello\n', 'sub/b.txt': 'bee\n' });
});

test('file: a task config from a producer’s output runs with that config, the step’s params over it', async () => {
  const config = {
    platform: 'linux',
    image_resource: image,
    inputs: [{ name: 'repo' }],
    params: { FROM_FILE: 'yes', OVERRIDDEN: 'file' },
    run: { path: 'from-file.sh', args: ['x'] },
  };
  const { buildId, outcome } = await build(`
plan:
- ${task('checkout', { params: writes({ 'repo/ci/task.yml': YAML.stringify(config), 'repo/README': 'code\n' }) }, { outputs: [{ name: 'repo' }] })}
- { task: from-file, file: repo/ci/task.yml, params: { OVERRIDDEN: step } }
`);
  expect(outcome).toMatchObject({ status: 'succeeded' });
  const consumer = podOf(buildId, 'from-file')!;
  const taskContainer = consumer.pod.spec!.containers.find((c) => c.name === CONTAINERS.task)!;
  expect(taskContainer.command).toEqual(['from-file.sh']);
  expect(envOf(taskContainer)).toMatchObject({ FROM_FILE: 'yes', OVERRIDDEN: 'step' });
  // and the config's input came from the producer pod, fetched by the real input-fetcher
  expect(readTree(path.join(consumer.workdir, 'repo'))).toMatchObject({ README: 'code\n', 'ci/task.yml': YAML.stringify(config) });
});

test('file: a file missing in the artifact errors the step, naming the file, the artifact and the pod', async () => {
  const { buildId, outcome } = await build(`
plan:
- ${task('checkout', { params: writes({ 'repo/README': 'code\n' }) }, { outputs: [{ name: 'repo' }] })}
- { task: from-file, file: repo/ci/missing.yml }
`);
  expect(outcome.status).toBe('errored');
  const producer = podOf(buildId, 'checkout')!.pod.metadata!.name!;
  expect(JSON.stringify(outcome)).toContain(
    `task from-file: file repo/ci/missing.yml: pod ${producer}: no file ci/missing.yml in output repo: check the path`,
  );
});

test('file: a service config from a producer’s output starts the service with it', async () => {
  const db = {
    image_resource: { type: 'registry-image', source: { repository: 'postgres', tag: '17' } },
    run: { path: 'docker-entrypoint.sh', args: ['postgres'] },
    ports: [{ name: 'pg', number: 5432 }],
  };
  const { buildId, outcome } = await build(`
plan:
- ${task('checkout', { params: writes({ 'svc/db.yml': YAML.stringify(db) }) }, { outputs: [{ name: 'svc' }] })}
- ${task('uses-db', { services: [{ name: 'db', file: 'svc/db.yml' }] })}
`);
  expect(outcome).toMatchObject({ status: 'succeeded' });
  const env = envOf(podOf(buildId, 'uses-db')!.pod.spec!.containers.find((c) => c.name === CONTAINERS.task));
  expect(env.DB_SERVICE_HOST).toMatch(new RegExp(`^cw-svc-db-[0-9a-f]{12}\\.${namespace}\\.svc$`));
  expect(env.DB_SERVICE_PORT_PG).toBe('5432');
});

test('load_var: a file of a producer’s output, read from its pod, fills a later step’s params', async () => {
  const { buildId, outcome } = await build(`
plan:
- ${task('version', { params: writes({ 'meta/version.json': JSON.stringify({ v: '1.2.3' }) }) }, { outputs: [{ name: 'meta' }] })}
- { load_var: version, file: meta/version.json, reveal: true }
- ${task('release', { params: { VERSION: '((.:version.v))' } })}
- { load_var: secret, file: meta/version.json }
- ${task('secret', { params: { SECRET: '((.:secret.v))' } })}
`);
  expect(outcome).toMatchObject({ status: 'succeeded' });
  expect(envOf(podOf(buildId, 'release')!.pod.spec!.containers.find((c) => c.name === CONTAINERS.task))).toMatchObject({
    VERSION: '1.2.3',
  });
  // A load_var without reveal is a secret, as Concourse's: its value stays out of the pod spec.
  const secretPod = podOf(buildId, 'secret')!.pod;
  expect(secretPod.spec!.containers.find((c) => c.name === CONTAINERS.task)!.env).toContainEqual({
    name: 'SECRET',
    valueFrom: { secretKeyRef: { name: `${secretPod.metadata!.name}-env`, key: 'SECRET' } },
  });
});

test('-i: an upload reaches consumer pods from the worker’s upload server, also once the worker’s disk copy is gone', async () => {
  const src = fs.mkdtempSync(path.join(scratch, 'upload-'));
  fs.mkdirSync(path.join(src, 'ci'));
  fs.writeFileSync(path.join(src, 'main.c'), 'int main(void) { return 0; }\n');
  const config = { platform: 'linux', image_resource: image, inputs: [{ name: 'src' }], params: { FROM_UPLOAD: 'yes' }, run };
  fs.writeFileSync(path.join(src, 'ci', 'task.yml'), YAML.stringify(config));
  const buildId = newBuildId();
  await putDirectory(await transferBucket(nc), transferKeys.input(buildId, 'src'), src);
  const { outcome } = await build(
    `
plan:
- { task: compile, file: src/ci/task.yml }
- ${task('after-worker-replaced', { params: { DROP_WORKER_COPY: 'src' } }, { inputs: [{ name: 'src' }] })}
`,
    { buildId, uploads: ['src'] },
  );
  expect(outcome).toMatchObject({ status: 'succeeded' });
  const compile = podOf(buildId, 'compile')!;
  // the task file came from the upload, read on the worker's disk
  expect(envOf(compile.pod.spec!.containers.find((c) => c.name === CONTAINERS.task))).toMatchObject({ FROM_UPLOAD: 'yes' });
  const inputs = JSON.parse(envOf(compile.pod.spec!.initContainers![0]).CAUSEWAY_INPUTS);
  expect(inputs).toEqual([
    {
      name: 'src',
      path: 'src',
      url: expect.stringMatching(new RegExp(`^http://${UPLOAD_IP.replace(/\./g, '\\.')}:\\d+/uploads/${buildId}/src$`)),
    },
  ]);
  const expected = { 'main.c': 'int main(void) { return 0; }\n', 'ci/task.yml': YAML.stringify(config) };
  expect(readTree(path.join(compile.workdir, 'src'))).toEqual(expected);
  // served again from the object store (a replaced worker pod has lost its disk)
  expect(readTree(path.join(podOf(buildId, 'after-worker-replaced')!.workdir, 'src'))).toEqual(expected);
  // the build's end removed the worker's copy
  expect(fs.existsSync(paths.build(home, buildId))).toBe(false);
});

test('an upload gone from the worker’s disk and the object store fails the consumer’s input-fetcher with the server’s reason', async () => {
  const buildId = newBuildId();
  const dir = fs.mkdtempSync(path.join(scratch, 'gone-'));
  fs.writeFileSync(path.join(dir, 'x'), 'x');
  await putDirectory(await transferBucket(nc), transferKeys.input(buildId, 'gone'), dir);
  const { outcome } = await build(
    `plan:\n- ${task('consume', { params: { DROP_WORKER_COPY: 'gone', DROP_STORED_COPY: 'gone' } }, { inputs: [{ name: 'gone' }] })}\n`,
    {
      buildId,
      uploads: ['gone'],
    },
  );
  expect(outcome.status).toBe('errored');
  expect(JSON.stringify(outcome)).toContain(`input-fetcher failed (exit 1, Error): input gone: `);
  expect(JSON.stringify(outcome)).toContain(
    `HTTP 404: upload gone of build ${buildId} is neither on worker ${worker.name}'s disk nor in the object store`,
  );
});

test('exports and file: reads say which pod and what to do: a producer pod gone, a token refused', async () => {
  const rt = worker.runtime;
  const buildId = uniqueBuildId();
  await rt.ensureAnchor(buildId);
  await expect(
    openPodArtifact(rt, buildId, podArtifact(rt.worker, 'cw-gone-0123456789abcdef', 'out'), 'output out (-o out)'),
  ).rejects.toThrow(
    "output out (-o out): its producer pod cw-gone-0123456789abcdef is gone (deleted, evicted, or removed with its build's objects); run the build again",
  );

  // a pod whose streamer holds another token
  const ip = `${NET}.${nextHost++}`;
  const workdir = fs.mkdtempSync(path.join(scratch, 'other-'));
  fs.mkdirSync(path.join(workdir, 'out'));
  const { server } = await serve({
    workdir,
    token: 'not-this-builds-token',
    outputs: [{ name: 'out', path: 'out' }],
    port: STREAMER_PORT,
    host: ip,
  });
  servers.push(server);
  const name = `cw-other-${randomUUID().slice(0, 8)}`;
  await core.createNamespacedPod({
    namespace,
    body: {
      metadata: { name, annotations: { [KWOK_CUSTOM_STATUS_ANNOTATION]: 'custom' } },
      spec: { containers: [{ name: 'x', image: 'busybox' }] },
    },
  });
  await until(async () => !!(await core.readNamespacedPod({ name, namespace })).spec?.nodeName, 'the pod scheduled');
  await patchPodStatus(core, namespace, name, { phase: 'Running', podIP: ip, podIPs: [{ ip }] });
  await expect(openPodArtifact(rt, buildId, podArtifact(rt.worker, name, 'out'), 'output out (-o out)')).rejects.toThrow(
    `output out (-o out): pod ${name}'s output-streamer refused the build's token (HTTP 401)`,
  );
  await rt.deleteBuild(buildId);
});
