// Tasks as containerd containers: the image's filesystem, Concourse's mounts and env, users,
// privileges, and nothing left behind.
import fs from 'node:fs';
import path from 'node:path';
import { keeperId } from '../../activities/runtime/containerd/keeper';
import { waitFor, type Harness } from '../workflows/harness';
import { BUSYBOX, ctr, mountsOf, notesOf, shimsOf, startContainerdHarness, task, watchShims } from './harness';

let h: Harness;
beforeAll(async () => {
  h = await startContainerdHarness();
});
afterAll(async () => {
  await h.stop();
});

/** Causeway's snapshots in containerd: steps' roots and spare ones (`cw-`), not the images' layers. */
function snapshots(): string[] {
  return ctr(['snapshots', 'ls'])
    .split('\n')
    .slice(1)
    .map((l) => l.split(/\s+/)[0])
    .filter((k) => k.startsWith('cw-'));
}

function leftovers(buildId: string): { containers: string; mounts: string[]; snapshots: string[] } {
  return { containers: ctr(['containers', 'ls', '-q']).trim(), mounts: mountsOf(h.home, buildId), snapshots: snapshots() };
}

test("a task with image_resource runs in that image: its /etc/os-release is the image's, not the host's", async () => {
  const r = await h.run(
    `plan:\n- ${task('os', 'cat /etc/os-release; echo params=$GREETING', { params: { GREETING: 'hi' } }, { image_resource: BUSYBOX })}`,
  );
  expect(r.status).toBe('succeeded');
  const log = r.logs.get('plan.0') ?? '';
  expect(log).toContain('Causeway busybox');
  expect(log).not.toMatch(/Debian GNU\/Linux/);
  expect(log).toContain('params=hi');
  expect(await notesOf(h.nc, r.buildId, 'plan.0')).toMatch(
    /image docker\.io\/library\/busybox:latest: (pulled|already in containerd|cached)/,
  );
  expect(leftovers(r.buildId)).toEqual({ containers: '', mounts: [], snapshots: [] });
});

test('a build’s containers share one shim, started for its keeper; later tasks take roots prepared ahead; the build’s end removes all', async () => {
  const stop = { done: false };
  const shims = watchShims(stop);
  const steps = [0, 1, 2].map((i) => `- ${task(`s${i}`, 'sleep 0.2; echo ran', {}, { image_resource: BUSYBOX })}`);
  const r = await h.run(`plan:\n${steps.join('\n')}`).finally(() => {
    stop.done = true;
  });
  expect(r.status).toBe('succeeded');
  expect(shimsOf(await shims, keeperId(r.buildId))).toEqual([keeperId(r.buildId)]);
  // Where each task's root was mounted (its step directory keeps the record): the first prepared
  // its own; the next ones took the one prepared while the previous task ran.
  const roots = fs
    .readdirSync(path.join(h.home, 'builds', r.buildId), { recursive: true, encoding: 'utf8' })
    .filter((f) => path.basename(f) === 'container.json')
    .map(
      (f) =>
        (JSON.parse(fs.readFileSync(path.join(h.home, 'builds', r.buildId, f), 'utf8')) as { rootfs: { target: string } }).rootfs.target,
    );
  expect(roots).toHaveLength(3);
  expect(roots.filter((t) => t.includes('/spare-roots/'))).toHaveLength(2);
  expect(leftovers(r.buildId)).toEqual({ containers: '', mounts: [], snapshots: [] });
});

/** The working directories of the build's task containers so far (each step's `work`, by its container.json). */
function taskWorkDirs(buildId: string): string[] {
  const dir = path.join(h.home, 'builds', buildId);
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => path.basename(f) === 'container.json' && !f.includes('/services/'))
    .map((f) => path.join(dir, path.dirname(f), 'work'));
}

/** A container's task status as `ctr tasks ls` shows it (the keeper's is CREATED while it keeps the group), or undefined. */
function taskStatus(id: string): string | undefined {
  return ctr(['tasks', 'ls'])
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .find((cols) => cols[0] === id)?.[2];
}

test('a keeper removed behind the worker’s back (another worker’s end of the build, the reconciler) is started again by the next task', async () => {
  // Each task waits for a file the test puts in its directory: the keeper goes while the first runs.
  const wait = 'until [ -e go ]; do sleep 0.05; done; echo went';
  const handle = await h.start(
    `plan:\n- ${task('first', wait, {}, { image_resource: BUSYBOX })}\n- ${task('second', wait, {}, { image_resource: BUSYBOX })}`,
  );
  const keeper = keeperId(handle.workflowId);
  const [first] = await waitFor(
    'the first task and the keeper',
    () => {
      const dirs = taskWorkDirs(handle.workflowId);
      return dirs.length === 1 && fs.existsSync(dirs[0]) && taskStatus(keeper) === 'CREATED' ? dirs : undefined;
    },
    60_000,
  );
  ctr(['tasks', 'rm', '-f', keeper]);
  ctr(['containers', 'rm', keeper]);
  expect(taskStatus(keeper)).toBeUndefined();
  fs.writeFileSync(path.join(first, 'go'), '');
  // Started (not only prepared): its start waited for the build's shim group.
  const second = await waitFor('the second task, running', () =>
    taskWorkDirs(handle.workflowId).find((d) => {
      if (d === first || !fs.existsSync(d)) return false;
      const { id } = JSON.parse(fs.readFileSync(path.join(path.dirname(d), 'container.json'), 'utf8')) as { id: string };
      return taskStatus(id) === 'RUNNING';
    }),
  );
  // The second task asked containerd, found no keeper and started one: its group is kept again.
  expect(taskStatus(keeper)).toBe('CREATED');
  fs.writeFileSync(path.join(second, 'go'), '');
  const r = await h.finish(handle);
  expect(r.status).toBe('succeeded');
  expect(r.logs.get('plan.1')).toBe('went\n');
  expect(leftovers(r.buildId)).toEqual({ containers: '', mounts: [], snapshots: [] });
});

test('outputs of one container are inputs of the next; run.dir and exit codes as Concourse has them', async () => {
  const r = await h.run(`plan:
- ${task('make', 'mkdir -p out/sub && echo made > out/sub/file', {}, { image_resource: BUSYBOX, outputs: [{ name: 'out' }] })}
- ${task('use', 'pwd; cat file; exit 3', {}, { image_resource: BUSYBOX, inputs: [{ name: 'out' }], run: { path: 'sh', args: ['-c', 'pwd; cat file; exit 3'], dir: 'out/sub' } })}
`);
  expect(r.status).toBe('failed');
  const log = r.logs.get('plan.1') ?? '';
  expect(log).toContain('made');
  expect(log).toMatch(/\/tmp\/build\/[0-9a-f]+\/out\/sub/);
  expect(r.summary?.steps.find((s) => s.id === 'plan.1')?.exitCode).toBe(3);
});

test('privileged: false cannot mount; privileged: true can', async () => {
  const script = 'mkdir -p /mnt/x && mount -t tmpfs none /mnt/x && echo mounted';
  const r = await h.run(`plan:\n- ${task('unpriv', script, {}, { image_resource: BUSYBOX })}`);
  expect(r.status).toBe('failed');
  expect(r.logs.get('plan.0')).not.toContain('mounted');
  const p = await h.run(`plan:\n- ${task('priv', script, { privileged: true }, { image_resource: BUSYBOX })}`);
  expect(p.status).toBe('succeeded');
  expect(p.logs.get('plan.0')).toContain('mounted');
});

test('run.user runs as the image’s user, who owns the working directory', async () => {
  const r = await h.run(
    `plan:\n- ${task('user', 'id -u; touch mine && echo wrote', {}, { image_resource: BUSYBOX, run: { path: 'sh', args: ['-c', 'id -u; touch mine && echo wrote'], user: 'nobody' } })}`,
  );
  expect(r.status).toBe('succeeded');
  expect(r.logs.get('plan.0')).toMatch(/65534[\s\S]*wrote/);
});

test('a step without an image runs in the worker’s default image', async () => {
  const r = await h.run(`plan:\n- ${task('default', 'cat /etc/os-release')}`);
  expect(r.status).toBe('succeeded');
  expect(r.logs.get('plan.0')).toContain('Causeway busybox');
});

test('a missing image errors the step with the registry’s reason', async () => {
  const r = await h.run(
    `plan:\n- ${task('missing', 'true', {}, { image_resource: { type: 'registry-image', source: { repository: 'no-such-image' } } })}`,
  );
  expect(r.status).toBe('errored');
  expect(JSON.stringify(r.summary)).toMatch(/no-such-image.*not found/);
});

test('an input is a copy-on-write view of its producer’s output: one consumer’s writes are not the next one’s', async () => {
  const image = { image_resource: BUSYBOX, inputs: [{ name: 'out' }] };
  const r = await h.run(`plan:
- ${task('make', 'echo made > out/file', {}, { image_resource: BUSYBOX, outputs: [{ name: 'out' }] })}
- ${task('change', 'grep " $PWD/out " /proc/self/mountinfo | grep -o " - overlay "; echo changed > out/file; echo new > out/new', {}, image)}
- ${task('check', 'cat out/file; ls out', {}, image)}
`);
  expect(r.status).toBe('succeeded');
  expect(r.logs.get('plan.1')).toContain(' - overlay ');
  expect(r.logs.get('plan.2')).toBe('made\nfile\n');
  expect(leftovers(r.buildId)).toEqual({ containers: '', mounts: [], snapshots: [] });
});
