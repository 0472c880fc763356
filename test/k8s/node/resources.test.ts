// Resources on the real node: a Concourse resource type that is an image (test-resource's
// `stamp`, busybox and three scripts) and a base type (`time`) run from its own image
// (CAUSEWAY_RESOURCE_IMAGES) check and fetch in real pods, pulled by the kubelet from the node's
// registry; a task reads what they fetched; a pipeline's periodic check of the image type runs in
// a pod too, as does its check of a base type on `dev up --runtime kubernetes`. The images are built
// offline by scripts/images/build.sh and pushed here (the base types' by the node at its start).
// A git resource is served over HTTP at the node's address, as a real cluster reaches its forge.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { awaitBuild, startBuild } from '../../../common/build-client';
import { collectLogs } from '../../../common/build-log';
import { DEV_NAMESPACE, readDevKubernetes } from '../../../cli/dev/kubernetes';
import { NODE_IP } from '../../../cli/dev/k8s/node';
import { compilePlan } from '../../../schemas';
import { parseResourceImages } from '../../../schemas/resource-images';
import { startBuildEnv, type BuildEnv } from '../setup/builds';
import { adminCore, adminKubeConfig, freshNamespace, testCluster } from '../setup/env';

jest.setTimeout(600_000);
/** Longer than any command here takes on a loaded machine (a trigger-job -w: about a minute). */
const CLI_TIMEOUT_MS = 300_000;

let env: BuildEnv;
let client: Client;
let namespace: string;
let registry: string;

/** Builds an image offline (cached by its inputs) and copies it to the node's registry as `ref`. */
function push(image: string, ref: string): void {
  const layout = execFileSync('bash', [path.resolve(__dirname, '../../../scripts/images/build.sh'), image], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
    .trim()
    .split(' ')[1];
  execFileSync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', layout, `docker://${registry}/${ref}`], { stdio: 'inherit' });
}

beforeAll(async () => {
  const node = testCluster().node!;
  registry = node.registry;
  push('test-resource', 'causeway-test/stamp-resource:latest');
  push('resource-time', 'causeway/resource-time:latest');
  namespace = await freshNamespace(adminCore(), 'node-resources');
  env = await startBuildEnv('k8s-node-resources', {
    kubernetes: {
      namespace,
      kubeConfig: adminKubeConfig(),
      defaultImage: node.images.task,
      agentImage: node.images.agent,
      resourceImages: parseResourceImages(`${registry}/causeway`),
      graceSeconds: 2,
    },
  });
  client = env.client;
});

afterAll(async () => {
  await env?.stop();
  await adminCore()
    .deleteNamespace({ name: namespace })
    .catch(() => undefined);
});

test('an image resource type and a base type from its image check and fetch in pods; a task reads both', async () => {
  const plan = compilePlan({
    file: 'resources.yml',
    job: 'j',
    text: `
resource_types:
- {name: stamp, type: registry-image, source: {repository: ${registry}/causeway-test/stamp-resource}}
resources:
- {name: s, type: stamp, source: {color: blue}}
- {name: tick, type: time, source: {interval: 1m}}
jobs:
- name: j
  plan:
  - get: s
  - get: tick
  - task: show
    config:
      platform: linux
      inputs: [{name: s}, {name: tick}]
      run: {path: sh, args: [-c, 'cat s/n; cat s/request.json; echo; cat tick/input 2>/dev/null || ls tick']}
`,
  });
  const handle = await startBuild(client, { plan, taskQueue: env.taskQueue });
  const outcome = await awaitBuild(handle);
  const logs = await collectLogs(env.nc, handle.workflowId);
  const all = [...logs.values()].join('\n');
  expect({ status: outcome.status, all }).toMatchObject({ status: 'succeeded' });
  expect(all).toContain('stamp check in causeway-busybox as uid 0');
  expect(all).toContain('stamp in: fetched 2 into');
  expect(logs.get('plan.2')).toContain('2\n{"source":{"color":"blue"},"version":{"n":"2"},"params":{}}');
});

/** The CLI against the stack the project's globalSetup started (`dev up --runtime kubernetes`). */
function cli(args: string[], cwd: string): { code: number | null; out: string } {
  const home = process.env.CAUSEWAY_TEST_DEV_HOME;
  if (!home) throw new Error('CAUSEWAY_TEST_DEV_HOME is not set: run through the jest "k8s-node" project');
  const r = spawnSync(path.resolve(__dirname, '../../../bin/causeway'), args, {
    cwd,
    env: { ...process.env, CAUSEWAY_HOME: home, NO_COLOR: '1' },
    encoding: 'utf8',
    // spawnSync blocks jest's own timeout: a command that hangs must fail the test, not the run.
    timeout: CLI_TIMEOUT_MS,
  });
  if (r.error || r.status !== 0) {
    // It hung twice in CI (stops 28 and 30) and failed once (stop 34), each time not again alone:
    // what the command said and what the dev worker did last say why.
    const log = readDevKubernetes(home)?.worker.log;
    const tail = log && fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').slice(-60).join('\n') : '(no worker log)';
    const how = r.error ? r.error.message : `exit ${r.status}`;
    process.stderr.write(`causeway ${args.join(' ')}: ${how}\n${r.stdout}${r.stderr}\nthe dev worker's last lines:\n${tail}\n`);
    return { code: r.error ? null : r.status, out: `causeway ${args.join(' ')}: ${how}\n${r.stdout}${r.stderr}` };
  }
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

test('a pipeline checks an image resource type in a pod of its image', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-k8s-resources-'));
  try {
    fs.writeFileSync(
      path.join(dir, 'p.yml'),
      `
resource_types:
- {name: stamp, type: registry-image, source: {repository: ${registry}/causeway-test/stamp-resource}}
resources:
- {name: s, type: stamp, check_every: never, source: {color: green}}
jobs:
- name: j
  plan: [{get: s}]
`,
    );
    expect(cli(['set-pipeline', '-n', '-p', 'node-stamp', '-c', 'p.yml'], dir)).toMatchObject({ code: 0 });
    // its output in the failure message: a check that failed once under load (exit 2) said nothing more
    expect(cli(['check-resource', '-r', 'node-stamp/s'], dir)).toEqual({ code: 0, out: expect.any(String) });
    const versions = cli(['resource-versions', '-r', 'node-stamp/s'], dir);
    expect(versions.out).toMatch(/n:2/);
    expect(versions.out).toMatch(/n:1/);
  } finally {
    cli(['destroy-pipeline', '-n', '-p', 'node-stamp'], dir);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("a pipeline's check of a base type (time) runs in a pod of its image: dev up gives its worker the node's resource images", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-k8s-resources-'));
  try {
    fs.writeFileSync(
      path.join(dir, 'p.yml'),
      `
resources:
- {name: tick-in-pod, type: time, check_every: never, source: {interval: 1m}}
jobs:
- name: j
  plan: [{get: tick-in-pod}]
`,
    );
    expect(cli(['set-pipeline', '-n', '-p', 'node-time', '-c', 'p.yml'], dir)).toMatchObject({ code: 0 });
    expect(cli(['check-resource', '-r', 'node-time/tick-in-pod'], dir)).toMatchObject({ code: 0 });
    expect(cli(['resource-versions', '-r', 'node-time/tick-in-pod'], dir).out).toMatch(/time:\d{4}-/);
    // The check's pod is gone with its check; the kubelet's events of it stay.
    const events = await adminCore().listNamespacedEvent({ namespace: DEV_NAMESPACE });
    const started = events.items.filter((e) => e.reason === 'Started' && e.involvedObject.name?.startsWith('cw-check-tick-in-pod-'));
    expect(started.length).toBeGreaterThan(0);
  } finally {
    cli(['destroy-pipeline', '-n', '-p', 'node-time'], dir);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("a git resource served over HTTP at the node's address: a pipeline's check and a job's get run in pods, and the task's git reads the fetched repository", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-k8s-git-'));
  const git = (args: string[], cwd: string) =>
    execFileSync('git', ['-c', 'user.email=ci@example.test', '-c', 'user.name=ci', ...args], { cwd, stdio: 'pipe' });
  // git's dumb HTTP protocol: a bare repository with its info files, served as plain files.
  fs.mkdirSync(path.join(dir, 'work'));
  git(['init', '-q', '-b', 'main'], path.join(dir, 'work'));
  fs.writeFileSync(path.join(dir, 'work', 'hello.sh'), 'echo hello from the repo\n');
  git(['add', '.'], path.join(dir, 'work'));
  git(['commit', '-qm', 'first'], path.join(dir, 'work'));
  git(['clone', '-q', '--bare', 'work', 'repo.git'], dir);
  git(['update-server-info'], path.join(dir, 'repo.git'));
  const server = spawn('python3', ['-m', 'http.server', '0', '--bind', NODE_IP, '--directory', dir], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  try {
    const port = await new Promise<string>((resolve, reject) => {
      server.stdout.on('data', (d: Buffer) => {
        const m = /port (\d+)/.exec(d.toString());
        if (m) resolve(m[1]);
      });
      server.once('exit', (code) => reject(new Error(`http.server exited ${code}`)));
    });
    fs.writeFileSync(
      path.join(dir, 'p.yml'),
      `
resources:
- {name: repo, type: git, check_every: never, source: {uri: "http://${NODE_IP}:${port}/repo.git", branch: main}}
jobs:
- name: unit
  plan:
  - get: repo
  - task: run
    config:
      platform: linux
      inputs: [{name: repo}]
      run: {path: sh, args: [-c, 'sh repo/hello.sh && git -C repo log --format=%s -1']}
`,
    );
    expect(cli(['set-pipeline', '-n', '-p', 'node-git', '-c', 'p.yml'], dir)).toMatchObject({ code: 0 });
    expect(cli(['unpause-pipeline', '-p', 'node-git'], dir)).toMatchObject({ code: 0 });
    expect(cli(['check-resource', '-r', 'node-git/repo'], dir)).toMatchObject({ code: 0 });
    const build = cli(['trigger-job', '-j', 'node-git/unit', '-w'], dir);
    expect(build.out).toContain('hello from the repo\nfirst\n');
    expect(build).toMatchObject({ code: 0 });
  } finally {
    server.kill();
    cli(['destroy-pipeline', '-n', '-p', 'node-git'], dir);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("mock (testflight's resource) runs in pods of its image: dev up pushes it with the node's images", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-k8s-mock-'));
  try {
    fs.writeFileSync(
      path.join(dir, 'p.yml'),
      `
resources:
- {name: m, type: mock, check_every: never, source: {initial_version: from-a-pod}}
jobs:
- name: j
  plan:
  - get: m
  - put: m
    params: {version: put-in-a-pod}
`,
    );
    expect(cli(['set-pipeline', '-n', '-p', 'node-mock', '-c', 'p.yml'], dir)).toMatchObject({ code: 0 });
    expect(cli(['unpause-pipeline', '-p', 'node-mock'], dir)).toMatchObject({ code: 0 });
    // trigger-job checks m first (in a pod), then the get, the put and its implicit get run in pods.
    const build = cli(['trigger-job', '-j', 'node-mock/j', '-w'], dir);
    expect(build.out).toContain('fetching version: from-a-pod');
    expect(build.out).toContain('pushing version: put-in-a-pod');
    expect(build.out).toContain('fetching version: put-in-a-pod');
    expect(build).toMatchObject({ code: 0 });
  } finally {
    cli(['destroy-pipeline', '-n', '-p', 'node-mock'], dir);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
