// The proofs of issue 11 through the CLI, on the stack `causeway dev up --runtime kubernetes`
// started (the project's globalSetup): every step a pod of the real node.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { testCluster } from '../setup/env';

jest.setTimeout(300_000);

const BIN = path.resolve(__dirname, '../../../bin/causeway');
const EXAMPLES = path.resolve(__dirname, '../../../examples');
let dir: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-k8s-cli-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], onOutput?: (out: string) => void): Promise<Result> {
  return new Promise((resolve, reject) => {
    const home = process.env.CAUSEWAY_TEST_DEV_HOME;
    if (!home) throw new Error('CAUSEWAY_TEST_DEV_HOME is not set: run through the jest "k8s-node" project');
    const child = spawn(BIN, args, {
      cwd: dir,
      env: { ...process.env, CAUSEWAY_HOME: home, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
      onOutput?.(stdout + stderr);
    });
    child.stderr.on('data', (d) => {
      stderr += d;
      onOutput?.(stdout + stderr);
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function plan(name: string, yaml: string): string {
  const file = path.join(dir, `${name}.yml`);
  fs.writeFileSync(file, yaml);
  return file;
}

test('dev status shows the cluster, the registry and the node', async () => {
  const r = await cli(['dev', 'status']);
  expect(r.code).toBe(0);
  for (const row of [
    /kube-apiserver\s+\d+\s+alive\s+https:\/\/198\.19\.128\.1:\d+/,
    /registry\s+\d+\s+alive\s+127\.0\.0\.1:\d+/,
    /node causeway-node\s+\d+\s+alive\s+198\.19\.128\.1/,
    /k8s-dev\s+\d+\s+alive/,
  ]) {
    expect(r.stdout).toMatch(row);
  }
});

test('examples/ci.yml succeeds unchanged, every step a pod of the real node', async () => {
  const out = path.join(dir, 'out');
  const r = await cli(['run', path.join(EXAMPLES, 'ci.yml'), '-v', 'version=2.0.0', '-o', `source=${out}`]);
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
  expect(r.stdout).toContain('ok - add 2 3 = 5');
  // The version comes from a load_var with reveal: true, which the log shows.
  expect(r.stdout).toContain('packaged version 2.0.0 for linux, darwin and windows');
  expect(fs.readFileSync(path.join(out, 'src', 'add.sh'), 'utf8')).toContain('add()');
});

test('an image that does not exist errors the step with Kubernetes’ reason', async () => {
  const { registry } = testCluster().node!;
  const file = plan(
    'missing-image',
    `
plan:
- task: nowhere
  config:
    platform: linux
    image_resource: {type: registry-image, source: {repository: "${registry}/causeway/does-not-exist", tag: "1"}}
    run: {path: sh, args: [-c, 'true']}
`,
  );
  const r = await cli(['run', file]);
  expect(r.code).toBe(2);
  expect(r.stdout + r.stderr).toMatch(/ErrImagePull|ImagePullBackOff/);
});

test('abort: the task gets SIGTERM (its trap runs), on_abort and ensure run', async () => {
  const file = plan(
    'abort',
    `
plan:
- task: wait
  config:
    platform: linux
    run: {path: bash, args: [-c, 'trap "echo got SIGTERM; exit 143" TERM; echo waiting; while true; do sleep 0.2; done']}
  on_abort:
    task: after-abort
    config: {platform: linux, run: {path: echo, args: [on_abort ran]}}
ensure:
  task: always
  config: {platform: linux, run: {path: echo, args: [ensure ran]}}
`,
  );
  const started = await cli(['run', '--detach', file]);
  expect(started.code).toBe(0);
  const buildId = started.stdout.trim().split('\n').pop()!;
  let running!: () => void;
  const waiting = new Promise<void>((resolve) => (running = resolve));
  const follow = cli(['watch', buildId], (out) => out.includes('waiting') && running());
  await waiting;
  const aborted = await cli(['abort', buildId]);
  expect(aborted.code).toBe(0);
  const r = await follow;
  const all = r.stdout + r.stderr;
  expect(all).toContain('got SIGTERM');
  expect(all).toContain('on_abort ran');
  expect(all).toContain('ensure ran');
});

test('across of three values: three services on the same port, each iteration reaching its own by its Service name', async () => {
  const [repository, tag] = testCluster().node!.images.task.split(/:(?=[^:]+$)/);
  const image = `{type: registry-image, source: {repository: "${repository}", tag: "${tag}"}}`;
  const file = plan(
    'across-services',
    `
plan:
- across:
  - var: v
    values: [a, b, c]
    max_in_flight: all
  task: use
  services:
  - name: web
    config:
      image_resource: ${image}
      params: {PAGE: page-((.:v))}
      run: {path: sh, args: [-c, 'mkdir -p /tmp/s && echo "$PAGE" > /tmp/s/index.html && exec python3 -m http.server 8080 -d /tmp/s']}
      ports: [8080]
  config:
    platform: linux
    run:
      path: python3
      args: [-c, 'import os, urllib.request; h = os.environ["WEB_SERVICE_HOST"]; print("want page-((.:v)) got", urllib.request.urlopen("http://%s:8080/" % h, timeout=10).read().decode().strip(), "from", h)']
`,
  );
  const r = await cli(['run', file]);
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
  const hosts = new Set<string>();
  for (const v of ['a', 'b', 'c']) {
    const m = new RegExp(`want page-${v} got page-${v} from (cw-svc-web-[0-9a-f]+)`).exec(r.stdout);
    expect(m).not.toBeNull();
    hosts.add(m![1]);
  }
  expect(hosts.size).toBe(3);
});

test('the worker killed with SIGKILL mid-step: the pod keeps running, the restarted worker re-attaches, the step ran once', async () => {
  const home = process.env.CAUSEWAY_TEST_DEV_HOME!;
  const file = plan(
    'reattach',
    `
plan:
- task: slow
  config:
    platform: linux
    run: {path: sh, args: [-c, 'echo "started in $(hostname)"; sleep 25; echo finished']}
`,
  );
  const started = await cli(['run', '--detach', file]);
  expect(started.code).toBe(0);
  const buildId = started.stdout.trim().split('\n').pop()!;
  let running!: () => void;
  const waiting = new Promise<void>((resolve) => (running = resolve));
  const follow = cli(['watch', buildId], (out) => out.includes('started in') && running());
  await waiting;
  const devFile = path.join(home, 'k8s', 'dev.json');
  const before = JSON.parse(fs.readFileSync(devFile, 'utf8')) as { worker: { pid: number } };
  process.kill(before.worker.pid, 'SIGKILL');
  // dev up keeps the running cluster (and the step's pod) and starts the worker again.
  const up = await cli(['dev', 'up', '--runtime', 'kubernetes']);
  expect(up.stdout).toContain('without its worker');
  const after = JSON.parse(fs.readFileSync(devFile, 'utf8')) as { worker: { pid: number } };
  expect(after.worker.pid).not.toBe(before.worker.pid);
  const r = await follow;
  const all = r.stdout + r.stderr;
  expect(r.code).toBe(0);
  expect(all).toMatch(/re-attached to pod cw-slow-[0-9a-f]+/);
  expect(all.match(/started in /g)).toHaveLength(1);
  expect(all).toContain('finished');
});
