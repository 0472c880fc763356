// Resources on the containerd runtime: a base type's scripts (registry-image here) run on the
// worker's host, so a `get` of an image from the run's local registry feeds a task's `image:`,
// which then runs in that rootfs; a put of a base type runs on the host as well. The get unpacks
// without privileges (every file the build's uid's): the task's rootfs gets the image's owners back.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Harness } from '../workflows/harness';
import { waitFor } from '../workflows/harness';
import { containerd, ctr, mountsOf, notesOf, startContainerdHarness } from './harness';

let h: Harness;
beforeAll(async () => {
  if (!fs.existsSync(path.resolve(__dirname, '../../dist/resources/src/registry-image.js')))
    throw new Error('run `npm run build` first: the base resource types run from dist/');
  // No default image: a task without image_resource runs only in what its `image:` names.
  // busybox plus /data of uid 999 (the image's user), a setuid file of root's, a hard link and
  // symlinks at the host's /etc/shadow (scripts/images/build.sh test-owners).
  const layout = execFileSync('bash', [path.resolve(__dirname, '../../scripts/images/build.sh'), 'test-owners'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
    .trim()
    .split(' ')[1];
  execFileSync(
    'skopeo',
    ['copy', '--quiet', '--dest-tls-verify=false', layout, `docker://${containerd().registry}/causeway-test/owners:latest`],
    {
      stdio: 'inherit',
    },
  );
  h = await startContainerdHarness({ defaultImage: null });
});
afterAll(async () => {
  await h.stop();
  try {
    ctr(['images', 'rm', `${containerd().registry}/causeway-test/owners:latest`]);
  } catch {
    // never pulled
  }
});

test('get of a registry-image feeds image: and the task runs in its rootfs; a put of a base type runs too', async () => {
  const registry = containerd().registry;
  const r = await h.run(
    `
resources:
- {name: my-image, type: registry-image, source: {repository: ${registry}/library/busybox, insecure: true}}
- {name: pushed, type: registry-image, source: {repository: ${registry}/causeway-test/from-containerd, tag: v1, insecure: true}}
jobs:
- name: j
  plan:
  - get: my-image
  - task: x
    image: my-image
    config:
      platform: linux
      run: {path: sh, args: [-c, 'grep ^ID= /etc/os-release; echo "pid $$"; ls /tmp/build']}
  - get: oci
    resource: my-image
    params: {format: oci}
  - put: pushed
    params: {image: oci/image.tar}
    no_get: true
`,
    { job: 'j' },
  );
  expect(r.status).toBe('succeeded');
  const digest = r.summary?.steps.find((s) => s.id === 'plan.0')?.resource?.version.digest;
  expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  // The image's os-release, as pid 1 of a container of its own: not the host, not a default image.
  expect(r.logs.get('plan.1')).toMatch(/ID=causeway-busybox\npid 1\n/);
  expect(await notesOf(h.nc, r.buildId, 'plan.1')).toContain('image: the rootfs of artifact my-image');
  expect(r.summary?.steps.find((s) => s.id === 'plan.3')?.resource?.version).toEqual({ digest });
  expect(ctr(['containers', 'ls', '-q', `labels."causeway.build"==${r.buildId}`]).trim()).toBe('');
  expect(mountsOf(h.home, r.buildId)).toEqual([]);
});

test("image: from a get runs with the image's owners: its user writes into its own /data; symlinks at the host are not followed", async () => {
  const shadow = fs.lstatSync('/etc/shadow');
  const r = await h.run(
    `
resources:
- {name: owners, type: registry-image, source: {repository: ${containerd().registry}/causeway-test/owners, insecure: true}}
jobs:
- name: j
  plan:
  - get: owners
  - task: write
    image: owners
    config:
      platform: linux
      run:
        path: sh
        args:
        - -c
        - |
          set -e
          echo "user $(id -u):$(id -g)"
          echo written >/data/new
          ls -ln /data /bin/setuid-root | awk 'NF > 3 {print $1, $3, $4, $NF}'
          ls -lnd /data | awk '{print "dir", $1, $3, $4}'
  - task: again
    image: owners
    config:
      platform: linux
      run: {path: sh, args: [-c, 'ls -lnd /data | awk "{print \\$3}"; ls /data']}
`,
    { job: 'j' },
  );
  expect(r.status).toBe('succeeded');
  const log = r.logs.get('plan.1') ?? '';
  // The image's user (metadata.json: 999:999) owns /data (0700) and writes into it.
  expect(log).toContain('user 999:999\n');
  expect(log).toContain('dir drwx------ 999 999\n');
  expect(log).toMatch(/-rw-r--r-- 999 999 kept\n/);
  expect(log).toMatch(/-rw-r--r-- 999 999 kept-link\n/);
  expect(log).toMatch(/-rw-r--r-- 999 999 new\n/);
  // Root's again, setuid kept (a chown clears it).
  expect(log).toMatch(/-rwsr-xr-x 0 0 \/bin\/setuid-root\n/);
  expect(await notesOf(h.nc, r.buildId, 'plan.1')).toContain("its files' owners restored from the rootless unpack");
  // Its own layer: the first task's write is not there; the owners are, from the same owned layer.
  expect(r.logs.get('plan.2')).toBe('999\nkept\nkept-link\nshadow\n');
  const buildDir = path.join(h.home, 'builds', r.buildId);
  const owned = path.join(buildDir, 'owned-roots');
  expect(fs.readdirSync(owned)).toHaveLength(1);
  expect(fs.statSync(owned).mode & 0o777).toBe(0o700);
  // The artifact itself is as the get wrote it: the unpacker's.
  const artifactData = fs
    .readdirSync(buildDir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('rootfs/data') && !f.startsWith('owned-roots/'));
  expect(artifactData).toHaveLength(1);
  expect(fs.statSync(path.join(buildDir, artifactData[0])).uid).not.toBe(999);
  // The symlinks (etc/x, data/shadow -> /etc/shadow) were not followed: the host's file is as it was.
  const after = fs.lstatSync('/etc/shadow');
  expect([after.uid, after.gid, after.mode, after.ctimeMs]).toEqual([shadow.uid, shadow.gid, shadow.mode, shadow.ctimeMs]);
  expect(ctr(['containers', 'ls', '-q', `labels."causeway.build"==${r.buildId}`]).trim()).toBe('');
  expect(mountsOf(h.home, r.buildId)).toEqual([]);
});

/** `command` as the build's uid and gid, without other groups, as the runtime runs its base types' scripts. */
function asBuildUid(uid: number, command: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--', ...command], { encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

test("an image's setuid-root file is out of the build's uid's reach on the host while its containers run", async () => {
  const registry = containerd().registry;
  // Each task waits in its work directory for a file the test writes there through the host.
  const wait = { path: 'sh', args: ['-c', 'until [ -e release ]; do sleep 0.1; done; stat -c "%A %u" /bin/setuid-root'] };
  const handle = await h.start(
    `
resources:
- {name: owners, type: registry-image, source: {repository: ${registry}/causeway-test/owners, insecure: true}}
jobs:
- name: j
  plan:
  - get: owners
  - in_parallel:
    - task: artifact
      image: owners
      config: {platform: linux, run: ${JSON.stringify(wait)}}
    - task: pulled
      config:
        platform: linux
        image_resource: {type: registry-image, source: {repository: ${registry}/causeway-test/owners}}
        run: ${JSON.stringify(wait)}
`,
    { job: 'j' },
  );
  const buildDir = path.join(h.home, 'builds', handle.workflowId);
  const workDirs = await waitFor('both tasks running', () => {
    let metas: string[];
    try {
      metas = fs.readdirSync(buildDir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('/container.json'));
    } catch {
      return undefined; // not made yet, or the get's files change under the walk
    }
    if (metas.length < 2) return undefined;
    const tasks = ctr(['tasks', 'ls']);
    const ids = metas.map((m) => (JSON.parse(fs.readFileSync(path.join(buildDir, m), 'utf8')) as { id: string }).id);
    if (!ids.every((id) => new RegExp(`^${id}\\s+\\d+\\s+RUNNING`, 'm').test(tasks))) return undefined;
    return metas.map((m) => path.join(buildDir, path.dirname(m), 'work'));
  });
  try {
    // The get ran on the host under the build's uid: its lease names it.
    const uid = Number(fs.readFileSync(path.join(h.home, 'build-uids', 'builds', handle.workflowId), 'utf8'));
    expect(uid).toBeGreaterThan(0);
    // Root sees the image's setuid-root file in the artifact's overlay, its owned layer, the
    // pulled snapshot's mount (and a spare root's, if one is prepared by now): the check below is not vacuous.
    const asRoot = execFileSync('find', [buildDir, '-perm', '-4000', '-user', '0'], { encoding: 'utf8' }).trim().split('\n');
    const roots = mountsOf(h.home, handle.workflowId).filter((m) => fs.existsSync(path.join(m, 'bin', 'setuid-root')));
    expect(roots.length).toBeGreaterThanOrEqual(2);
    expect(asRoot.length).toBeGreaterThanOrEqual(3);
    for (const file of [...asRoot, ...roots.map((m) => path.join(m, 'bin', 'setuid-root'))]) {
      const stat = asBuildUid(uid, ['stat', '-c', '%a %u', file]);
      expect([stat.code, stat.stderr]).toEqual([1, expect.stringContaining('Permission denied')]);
      expect(asBuildUid(uid, [file]).code).not.toBe(0);
    }
    // No path at all under the worker's home: find as the build's uid goes wherever it may.
    expect(asBuildUid(uid, ['find', h.home, '-perm', '-4000', '-user', '0']).stdout).toBe('');
    // A pulled image's snapshots are in containerd's own root, which no one else may enter.
    const snapshots = fs.statSync(path.join(containerd().dir, 'root', 'io.containerd.snapshotter.v1.overlayfs'));
    expect([snapshots.uid, snapshots.mode & 0o777]).toEqual([0, 0o700]);
    // The get's artifact (what a host-run put would read) is still the build's uid's to reach.
    const artifact = fs
      .readdirSync(buildDir, { recursive: true, encoding: 'utf8' })
      .find((f) => f.endsWith('/rootfs') && fs.statSync(path.join(buildDir, f)).uid === uid);
    expect(artifact).toBeDefined();
    expect(asBuildUid(uid, ['ls', path.join(buildDir, artifact!, 'bin')]).stdout).toContain('setuid-root');
  } catch (err) {
    // The build ends either way: its end removes its containers and mounts.
    for (const dir of workDirs) fs.writeFileSync(path.join(dir, 'release'), '');
    await h.finish(handle);
    throw err;
  }
  for (const dir of workDirs) fs.writeFileSync(path.join(dir, 'release'), '');
  const r = await h.finish(handle);
  expect(r.status).toBe('succeeded');
  // In the containers the file is root's and setuid, as the image has it.
  expect(r.logs.get('plan.1.in_parallel.0')).toBe('-rwsr-xr-x 0\n');
  expect(r.logs.get('plan.1.in_parallel.1')).toBe('-rwsr-xr-x 0\n');
  expect(ctr(['containers', 'ls', '-q', `labels."causeway.build"==${r.buildId}`]).trim()).toBe('');
  expect(mountsOf(h.home, r.buildId)).toEqual([]);
});
