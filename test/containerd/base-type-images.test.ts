// The base resource types as images (scripts/images/build.sh resource-git, resource-time), the
// images a kubernetes worker runs them from (CAUSEWAY_RESOURCE_IMAGES), proved on containerd:
// declared as resource_types of type registry-image and pushed to the run's local registry,
// their /opt/resource scripts check, get and put a git repository served by `git daemon` on
// 127.0.0.1 (resource containers have the worker's network) and a time interval; registry-image's
// (skopeo and umoci in its image) gets busybox from that registry.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Harness } from '../workflows/harness';
import { containerd, ctr, mountsOf, startContainerdHarness } from './harness';

let h: Harness;
let daemon: ChildProcess;
let tmp: string;
let uri: string;
const bare = () => path.join(tmp, 'repo.git');
const git = (args: string[], cwd: string) => execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

beforeAll(async () => {
  const built = execFileSync(
    'bash',
    [path.resolve(__dirname, '../../scripts/images/build.sh'), 'resource-git', 'resource-time', 'resource-registry-image'],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  for (const line of built.trim().split('\n')) {
    const [name, layout] = line.split(' ');
    execFileSync(
      'skopeo',
      ['copy', '--quiet', '--dest-tls-verify=false', layout, `docker://${containerd().registry}/causeway/${name}:latest`],
      {
        stdio: 'inherit',
      },
    );
  }
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-base-images-'));
  const work = path.join(tmp, 'work');
  execFileSync('git', ['init', '--quiet', '--bare', '--initial-branch=main', bare()]);
  execFileSync('git', ['init', '--quiet', '--initial-branch=main', work]);
  fs.writeFileSync(path.join(work, 'README'), 'hello from the repo\n');
  git(['add', 'README'], work);
  git(['-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '--quiet', '-m', 'first'], work);
  git(['push', '--quiet', bare(), 'main'], work);
  const port = await freePort();
  daemon = spawn(
    'git',
    ['daemon', '--reuseaddr', '--listen=127.0.0.1', `--port=${port}`, `--base-path=${tmp}`, '--export-all', '--enable=receive-pack', tmp],
    { stdio: 'inherit' },
  );
  uri = `git://127.0.0.1:${port}/repo.git`;
  // Serving once ls-remote answers.
  for (let i = 0; ; i++) {
    try {
      execFileSync('git', ['ls-remote', uri], { stdio: 'ignore' });
      break;
    } catch (err) {
      if (i > 100) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  h = await startContainerdHarness();
}, 900_000);
afterAll(async () => {
  await h?.stop();
  daemon?.kill();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('git as an image: check and get fetch the served repo, put pushes a tag to it', async () => {
  const head = git(['rev-parse', 'main'], bare());
  const r = await h.run(
    `
resource_types:
- {name: git-img, type: registry-image, source: {repository: causeway/resource-git}}
resources:
- {name: repo, type: git-img, source: {uri: '${uri}', branch: main}}
jobs:
- name: j
  plan:
  - get: repo
  - task: tag
    config:
      platform: linux
      inputs: [{name: repo}]
      outputs: [{name: made}]
      run: {path: sh, args: [-c, 'cat repo/README && echo v1 > made/tag']}
  - put: repo
    params: {repository: repo, tag: made/tag}
`,
    { job: 'j' },
  );
  expect(r.status).toBe('succeeded');
  const steps = r.summary?.steps ?? [];
  expect(steps.find((s) => s.id === 'plan.0')?.resource?.version).toEqual({ ref: head });
  expect(r.logs.get('plan.1')).toContain('hello from the repo');
  // The put pushed the tag over git://; its implicit get fetched the commit it points at.
  expect(git(['rev-parse', 'v1^{commit}'], bare())).toBe(head);
  expect(steps.find((s) => s.id === 'plan.2')?.resource?.version).toEqual({ ref: head });
  // The scripts ran in containers of the type's image, which the worker pulled.
  expect(ctr(['images', 'ls', '-q'])).toContain('docker.io/causeway/resource-git:latest');
  expect(ctr(['containers', 'ls', '-q', `labels."causeway.build"==${r.buildId}`]).trim()).toBe('');
  expect(mountsOf(h.home, r.buildId)).toEqual([]);
});

test('time as an image: check and get give the interval version', async () => {
  const r = await h.run(
    `
resource_types:
- {name: time-img, type: registry-image, source: {repository: causeway/resource-time}}
resources:
- {name: clock, type: time-img, source: {interval: 1m}}
jobs:
- name: j
  plan:
  - get: clock
  - task: show
    config:
      platform: linux
      inputs: [{name: clock}]
      run: {path: sh, args: [-c, 'cat clock/input']}
`,
    { job: 'j' },
  );
  expect(r.status).toBe('succeeded');
  const version = r.summary?.steps.find((s) => s.id === 'plan.0')?.resource?.version;
  expect(Number.isNaN(Date.parse(version?.time ?? ''))).toBe(false);
  expect(ctr(['images', 'ls', '-q'])).toContain('docker.io/causeway/resource-time:latest');
});

test('registry-image as an image: get fetches an image from the local registry with skopeo and umoci of its own', async () => {
  const registry = containerd().registry;
  const r = await h.run(
    `
resource_types:
- {name: ri-img, type: registry-image, source: {repository: causeway/resource-registry-image}}
resources:
- {name: bb, type: ri-img, source: {repository: ${registry}/library/busybox, insecure: true}}
jobs:
- name: j
  plan:
  - get: bb
  - task: show
    config:
      platform: linux
      inputs: [{name: bb}]
      run: {path: sh, args: [-c, 'cat bb/repository; echo; cat bb/rootfs/etc/os-release']}
`,
    { job: 'j' },
  );
  expect(r.status).toBe('succeeded');
  expect(r.summary?.steps.find((s) => s.id === 'plan.0')?.resource?.version.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  expect(r.logs.get('plan.1')).toContain(`${registry}/library/busybox`);
  expect(r.logs.get('plan.1')).toContain('ID=causeway-busybox');
  expect(ctr(['images', 'ls', '-q'])).toContain('docker.io/causeway/resource-registry-image:latest');
});

test('a host git get, a commit by git in a root task container, and a put: the work directory is idmapped, the build’s files are root’s there', async () => {
  // The host base type's get writes the repository as the build's uid; the task runs as root in a
  // container (resource-git's image has git), which sees its work directory idmapped: the build's
  // uid as root, so git finds its own repository (no "dubious ownership", no safe.directory), and
  // what it writes lands as the build's uid, which the put then reads as its own.
  const r = await h.run(
    `
resources:
- {name: repo, type: git, source: {uri: '${uri}', branch: main}}
jobs:
- name: j
  plan:
  - get: repo
  - get: view
    resource: repo
  - task: commit
    config:
      platform: linux
      image_resource: {type: registry-image, source: {repository: causeway/resource-git}}
      inputs: [{name: repo}, {name: view}]
      outputs: [{name: repo}]
      run:
        path: sh
        args:
        - -c
        - |
          set -e
          echo "trust ${'$'}{GIT_CONFIG_COUNT:-none}"
          stat -c '%u:%g %n' . repo repo/README view view/README
          touch view/written-in-view repo/written-in-output
          cd repo && git -c user.name=t -c user.email=t@example.com commit -q --allow-empty -m from-container && git log -1 --format=%s
  - put: repo
    params: {repository: repo, branch: from-task}
`,
    { job: 'j' },
  );
  expect(r.status).toBe('succeeded');
  const log = r.logs.get('plan.2') ?? '';
  expect(log).toContain('trust none\n');
  for (const name of ['.', 'repo', 'repo/README', 'view', 'view/README']) expect(log).toContain(`0:0 ${name}\n`);
  expect(log).toContain('from-container');
  expect(git(['log', '-1', '--format=%s', 'from-task'], bare())).toBe('from-container');
  // On the host, the files root wrote in the container are the build's uid's, as the get's are.
  const buildDir = path.join(h.home, 'builds', r.buildId);
  const files = fs.readdirSync(buildDir, { recursive: true, encoding: 'utf8' });
  const at = (suffix: string) => {
    const found = files.filter((f) => f.endsWith(suffix));
    expect(found).toHaveLength(1);
    return fs.lstatSync(path.join(buildDir, found[0]));
  };
  const getUid = fs.lstatSync(
    path.join(
      buildDir,
      files.find((f) => f.includes('/plan.0/') && f.endsWith('/README'))!,
    ),
  ).uid;
  expect(getUid).not.toBe(0);
  for (const written of ['/work/repo/written-in-output', '/upper/written-in-view'])
    expect([written, at(written).uid, at(written).gid]).toEqual([written, getUid, getUid]);
  expect(ctr(['containers', 'ls', '-q', `labels."causeway.build"==${r.buildId}`]).trim()).toBe('');
  expect(mountsOf(h.home, r.buildId)).toEqual([]);
});
