// Uploads (-i), exports (-o), `file:` configs and `load_var` on the kubernetes runtime, through
// whole builds on the real node: each step pod's input-fetcher and output-streamer are the agent
// image's, run by the kubelet; the worker (in the test, on this host) serves uploads at the
// node's address, which pods reach. These were KWOK tests that ran the agent on the host for
// each pod and patched its status (the producer-gone message, which needs no pod, stays there).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import YAML from 'yaml';
import { getDirectory, putDirectory, transferBucket, transferKeys } from '../../../common/transfer';
import { paths } from '../../../activities/deps';
import { podArtifact } from '../../../activities/runtime/kubernetes/artifact-ref';
import { openPodArtifact } from '../../../activities/runtime/kubernetes/artifacts';
import type { CoreV1Api, V1Container, V1Pod } from '../../../activities/runtime/kubernetes/client';
import type { RunTaskRequest } from '../../../activities/types';
import { ANNOTATIONS, CONTAINERS, LABELS } from '../../../activities/runtime/kubernetes/pod';
import { awaitBuild, newBuildId, startBuild } from '../../../common/build-client';
import { collectLogs } from '../../../common/build-log';
import { NODE_IP } from '../../../cli/dev/k8s/node';
import { compilePlan } from '../../../schemas';
import { startBuildEnv, type BuildEnv } from '../setup/builds';
import { adminCore, adminKubeConfig, freshNamespace, recordPods, testCluster, uniqueBuildId, until } from '../setup/env';
import { Gate } from './gate';

// The tests run side by side (each its own build and pods; most of their time is the kubelet's):
// the file takes about as long as its slowest few instead of their sum.
jest.setTimeout(300_000);

let core: CoreV1Api;
let namespace: string;
let env: BuildEnv;
let client: Client;
let gate: Gate;
let scratch: string;
let pods: ReturnType<typeof recordPods> | undefined;

beforeAll(async () => {
  core = adminCore();
  namespace = await freshNamespace(core, 'node-io');
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-k8s-node-io-'));
  const { images } = testCluster().node!;
  env = await startBuildEnv('k8s-node-io', {
    kubernetes: { namespace, kubeConfig: adminKubeConfig(), defaultImage: images.task, agentImage: images.agent, graceSeconds: 1 },
    uploads: { host: NODE_IP, port: 0 },
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
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

/** Writes the files of its WRITE param (a JSON map of path → content) into its working directory. */
const WRITER = [
  'import json, os',
  'for f, c in json.loads(os.environ["WRITE"]).items():',
  '    os.makedirs(os.path.dirname(f) or ".", exist_ok=True)',
  '    open(f, "w").write(c)',
].join('\n');

const task = (name: string, extra: Record<string, unknown> = {}, config: Record<string, unknown> = {}) =>
  JSON.stringify({ task: name, config: { platform: 'linux', run: { path: 'true' }, ...config }, ...extra });
/** A step writing `files`, with these outputs. */
const writer = (name: string, files: Record<string, string>, outputs: string[]) =>
  task(
    name,
    { params: { WRITE: JSON.stringify(files) } },
    { outputs: outputs.map((o) => ({ name: o })), run: { path: 'python3', args: ['-c', WRITER] } },
  );
const sh = (script: string) => ({ run: { path: 'sh', args: ['-c', script] } });

async function build(yaml: string, opts: { buildId?: string; uploads?: string[]; downloads?: string[] } = {}) {
  const plan = compilePlan({ text: yaml, file: 'k8s-io.yml' });
  const handle = await startBuild(client, { plan, taskQueue: env.taskQueue, ...opts });
  const outcome = await awaitBuild(handle);
  const logs = [...(await collectLogs(env.nc, handle.workflowId)).values()].join('');
  return { buildId: handle.workflowId, outcome, logs };
}

const podOf = (buildId: string, taskName: string) =>
  [...(pods?.seen.values() ?? [])].find(
    (p) => p.metadata?.labels?.[LABELS.build] === buildId && p.metadata?.annotations?.[ANNOTATIONS.task] === taskName,
  );
const envOf = (c: V1Container | undefined) => Object.fromEntries((c?.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom] as const));
const taskOf = (pod: V1Pod | undefined) => pod?.spec?.containers.find((c) => c.name === CONTAINERS.task);

function readTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile())
      out[path.relative(dir, path.join(entry.parentPath, entry.name))] = fs.readFileSync(path.join(entry.parentPath, entry.name), 'utf8');
  }
  return out;
}

test.concurrent('-o: an output of a pod reaches the object store from the producer’s output-streamer, and only that output', async () => {
  const { buildId, outcome } = await build(
    `plan:\n- ${writer('produce', { 'out/a.txt': 'hello\n', 'out/sub/b.txt': 'bee\n', 'elsewhere.txt': 'not an output' }, ['out'])}\n`,
    { downloads: ['out'] },
  );
  expect(outcome).toMatchObject({ status: 'succeeded' });
  const dest = fs.mkdtempSync(path.join(scratch, 'export-'));
  expect(await getDirectory(await transferBucket(env.nc), transferKeys.output(buildId, 'out'), dest)).toBe(true);
  expect(readTree(dest)).toEqual({ 'a.txt': 'hello\n', 'sub/b.txt': 'bee\n' });
});

test.concurrent('file: a task config from a producer’s output runs with that config, the step’s params over it', async () => {
  const config = {
    platform: 'linux',
    inputs: [{ name: 'repo' }],
    params: { FROM_FILE: 'yes', OVERRIDDEN: 'file' },
    run: { path: 'sh', args: ['-c', 'echo "FROM_FILE=$FROM_FILE OVERRIDDEN=$OVERRIDDEN"; cat repo/README'] },
  };
  const { outcome, logs } = await build(`
plan:
- ${writer('checkout', { 'repo/ci/task.yml': YAML.stringify(config), 'repo/README': 'code\n' }, ['repo'])}
- { task: from-file, file: repo/ci/task.yml, params: { OVERRIDDEN: step } }
`);
  expect(outcome).toMatchObject({ status: 'succeeded' });
  // the config's input came from the producer pod, fetched by the input-fetcher
  expect(logs).toContain('FROM_FILE=yes OVERRIDDEN=step\ncode\n');
});

test.concurrent('file: a file missing in the artifact errors the step, naming the file, the artifact and the pod', async () => {
  const { outcome } = await build(`
plan:
- ${writer('checkout', { 'repo/README': 'code\n' }, ['repo'])}
- { task: from-file, file: repo/ci/missing.yml }
`);
  expect(outcome.status).toBe('errored');
  expect(JSON.stringify(outcome)).toMatch(
    /task from-file: file repo\/ci\/missing.yml: pod cw-checkout-[0-9a-f]+: no file ci\/missing.yml in output repo: check the path/,
  );
});

test.concurrent('file: a service config from a producer’s output starts the service with it', async () => {
  const [repository, tag] = testCluster().node!.images.task.split(/:(?=[^:]+$)/);
  const db = {
    image_resource: { type: 'registry-image', source: { repository, tag } },
    run: { path: 'sh', args: ['-c', 'echo db from a file; exec python3 -m http.server 5432 >/dev/null 2>&1'] },
    ports: [{ name: 'pg', number: 5432 }],
  };
  const { outcome, logs } = await build(`
plan:
- ${writer('checkout', { 'svc/db.yml': YAML.stringify(db) }, ['svc'])}
- ${task('uses-db', { services: [{ name: 'db', file: 'svc/db.yml' }] }, sh('curl -sf -o /dev/null http://$DB_SERVICE_HOST:$DB_SERVICE_PORT_PG/ && echo "db answers at $DB_SERVICE_HOST"'))}
`);
  expect(outcome).toMatchObject({ status: 'succeeded' });
  expect(logs).toMatch(new RegExp(`db answers at cw-svc-db-[0-9a-f]{12}\\.${namespace}\\.svc\\n`));
});

test.concurrent(
  'load_var: a file of a producer’s output, read from its pod, fills a later step’s params; without reveal it stays out of the pod spec',
  async () => {
    const { buildId, outcome, logs } = await build(`
plan:
- ${writer('version', { 'meta/version.json': JSON.stringify({ v: '1.2.3' }) }, ['meta'])}
- { load_var: version, file: meta/version.json, reveal: true }
- ${task('release', { params: { VERSION: '((.:version.v))' } }, sh('echo "release $VERSION"'))}
- { load_var: secret, file: meta/version.json }
- ${task('secret', { params: { SECRET: '((.:secret.v))' } }, sh('echo "secret of ${#SECRET} chars"'))}
`);
    expect(outcome).toMatchObject({ status: 'succeeded' });
    expect(logs).toContain('release 1.2.3\n');
    expect(logs).toContain('secret of 5 chars\n');
    // A load_var without reveal is a secret, as Concourse's: its value reaches the container through a Secret.
    const secretPod = podOf(buildId, 'secret')!;
    expect(envOf(taskOf(secretPod)).SECRET).toEqual({ secretKeyRef: { name: `${secretPod.metadata!.name}-env`, key: 'SECRET' } });
  },
);

test.concurrent(
  '-i: an upload reaches consumer pods from the worker’s upload server, and from the object store once the worker’s disk copy is gone',
  async () => {
    const src = fs.mkdtempSync(path.join(scratch, 'upload-'));
    fs.mkdirSync(path.join(src, 'ci'));
    fs.writeFileSync(path.join(src, 'main.c'), 'int main(void) { return 0; }\n');
    const config = {
      platform: 'linux',
      inputs: [{ name: 'src' }],
      params: { FROM_UPLOAD: 'yes' },
      ...sh('echo "from upload: $FROM_UPLOAD"; cat src/main.c'),
    };
    fs.writeFileSync(path.join(src, 'ci', 'task.yml'), YAML.stringify(config));
    const buildId = newBuildId();
    await putDirectory(await transferBucket(env.nc), transferKeys.input(buildId, 'src'), src);
    const built = build(
      `
plan:
- { task: compile, file: src/ci/task.yml }
- ${task('replace-worker', {}, sh(gate.waitFor(`replaced-${buildId}`)))}
- ${task('after-worker-replaced', {}, { inputs: [{ name: 'src' }], ...sh('cat src/main.c') })}
`,
      { buildId, uploads: ['src'] },
    );
    // A worker pod replaced between two steps (its emptyDir gone) has lost the disk copy.
    await until(async () => podOf(buildId, 'replace-worker'), 'the middle step', 120_000);
    fs.rmSync(paths.inputs(env.home, buildId, 'src'), { recursive: true, force: true });
    gate.open(`replaced-${buildId}`);
    const { outcome, logs } = await built;
    expect(outcome).toMatchObject({ status: 'succeeded' });
    // the task file came from the upload, read on the worker's disk; its input from the upload server
    expect(logs).toBe('from upload: yes\nint main(void) { return 0; }\nint main(void) { return 0; }\n');
    const fetcher = podOf(buildId, 'compile')!.spec!.initContainers!.find((c) => c.name === CONTAINERS.fetcher);
    expect(JSON.parse(envOf(fetcher).CAUSEWAY_INPUTS as string)).toEqual([
      {
        name: 'src',
        path: 'src',
        url: expect.stringMatching(new RegExp(`^http://${NODE_IP.replace(/\./g, '\\.')}:\\d+/uploads/${buildId}/src$`)),
      },
    ]);
    // the build's end removed the worker's copy
    expect(fs.existsSync(paths.build(env.home, buildId))).toBe(false);
  },
);

test.concurrent(
  'an upload gone from the worker’s disk and the object store fails the consumer’s input-fetcher with the server’s reason',
  async () => {
    const buildId = newBuildId();
    const dir = fs.mkdtempSync(path.join(scratch, 'gone-'));
    fs.writeFileSync(path.join(dir, 'x'), 'x');
    await putDirectory(await transferBucket(env.nc), transferKeys.input(buildId, 'gone'), dir);
    const built = build(
      `
plan:
- ${task('first', {}, sh(gate.waitFor(`gone-${buildId}`)))}
- ${task('consume', {}, { inputs: [{ name: 'gone' }] })}
`,
      { buildId, uploads: ['gone'] },
    );
    await until(async () => podOf(buildId, 'first'), 'the first step', 120_000);
    fs.rmSync(paths.inputs(env.home, buildId, 'gone'), { recursive: true, force: true });
    await (await transferBucket(env.nc)).delete(transferKeys.input(buildId, 'gone'));
    gate.open(`gone-${buildId}`);
    const { outcome } = await built;
    expect(outcome.status).toBe('errored');
    // the agent's reason, as the kubelet reports the failed container's last log line
    expect(JSON.stringify(outcome)).toContain(`input-fetcher failed (exit 1, Error): causeway-agent: input gone: `);
    expect(JSON.stringify(outcome)).toContain(
      `HTTP 404: upload gone of build ${buildId} is neither on worker ${env.worker.name}'s disk nor in the object store`,
    );
  },
);

test.concurrent('a producer pod’s output-streamer refuses another build’s token, and the error says which pod and what to do', async () => {
  const rt = env.worker.runtime;
  const producer: RunTaskRequest = {
    buildId: uniqueBuildId(),
    runId: 'run-1',
    plan: 'io',
    runKey: '1',
    attempt: 1,
    artifacts: {},
    step: {
      kind: 'task',
      id: 'plan.0',
      task: 'keep',
      params: {},
      vars: {},
      inputMapping: {},
      outputMapping: {},
      privileged: false,
      config: { inputs: [], outputs: [{ name: 'out' }], caches: [], params: {}, run: { path: 'true', args: [] } },
    },
  };
  const kept = await rt.runStep(producer);
  expect(kept).toMatchObject({ state: 'succeeded' });
  const other = uniqueBuildId();
  await rt.ensureAnchor(other);
  try {
    await expect(openPodArtifact(rt, other, podArtifact(rt.worker, kept.pod, 'out'), 'output out (-o out)')).rejects.toThrow(
      `output out (-o out): pod ${kept.pod}'s output-streamer refused the build's token (HTTP 401)`,
    );
  } finally {
    await rt.deleteBuild(other);
    await rt.deleteBuild(producer.buildId);
  }
});
