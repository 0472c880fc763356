// Tasks as containerd containers: the image's filesystem, Concourse's mounts and env, users,
// privileges, and nothing left behind.
import type { Harness } from '../workflows/harness';
import { BUSYBOX, ctr, mountsOf, notesOf, startContainerdHarness, task } from './harness';

let h: Harness;
beforeAll(async () => {
  h = await startContainerdHarness();
});
afterAll(async () => {
  await h.stop();
});

function leftovers(buildId: string): { containers: string; mounts: string[] } {
  return { containers: ctr(['containers', 'ls', '-q']).trim(), mounts: mountsOf(h.home, buildId) };
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
  expect(leftovers(r.buildId)).toEqual({ containers: '', mounts: [] });
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
  expect(leftovers(r.buildId)).toEqual({ containers: '', mounts: [] });
});
