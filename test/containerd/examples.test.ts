// examples/ unchanged on the containerd runtime (steps without an image run in the worker's
// default image), and Concourse's image from an earlier step's output.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Harness } from '../workflows/harness';
import { BUSYBOX, containerd, notesOf, startContainerdHarness, task } from './harness';

const EXAMPLES = path.resolve(__dirname, '../../examples');

let h: Harness;
beforeAll(async () => {
  h = await startContainerdHarness();
});
afterAll(async () => {
  await h.stop();
});

test('examples/hello.yml runs unchanged, in the default image', async () => {
  const r = await h.run(fs.readFileSync(path.join(EXAMPLES, 'hello.yml'), 'utf8'), { file: 'examples/hello.yml' });
  expect(r.status).toBe('succeeded');
  expect(r.logs.get('plan.0')).toContain('hello from a Temporal workflow');
});

test('examples/ci.yml runs unchanged: artifacts, in_parallel, load_var, across, hooks', async () => {
  const r = await h.run(fs.readFileSync(path.join(EXAMPLES, 'ci.yml'), 'utf8'), { file: 'examples/ci.yml', vars: { version: '1.0.0' } });
  expect(r.status).toBe('succeeded');
  const all = [...r.logs.values()].join('\n');
  expect(all).toContain('ok - add 2 3 = 5');
  // The version comes from a load_var with reveal: true, which the log shows.
  expect(all).toContain('add-1.0.0-windows.tgz');
  expect(all).toContain('cleanup runs whatever happened');
});

test('image: an artifact holding rootfs/ (and metadata.json) is the next step’s image', async () => {
  // The first step makes a root filesystem from its own image's busybox, with an os-release and env of its own.
  const make = [
    'mkdir -p img/rootfs/bin img/rootfs/etc img/rootfs/tmp',
    'cp /bin/busybox img/rootfs/bin/busybox',
    'for a in sh cat echo; do ln -s busybox img/rootfs/bin/$a; done',
    'echo "NAME=made-by-a-step" > img/rootfs/etc/os-release',
    'echo \'{"env": ["PATH=/bin", "FROM_METADATA=yes"]}\' > img/metadata.json',
  ].join(' && ');
  const r = await h.run(`plan:
- ${task('build-image', make, {}, { image_resource: BUSYBOX, outputs: [{ name: 'img' }] })}
- ${task('use-image', 'cat /etc/os-release; echo "meta=$FROM_METADATA"; echo scribble > /etc/os-release', { image: 'img' })}
- ${task('again', 'cat /etc/os-release', { image: 'img' })}
`);
  expect(r.status).toBe('succeeded');
  expect(r.logs.get('plan.1')).toContain('NAME=made-by-a-step');
  expect(r.logs.get('plan.1')).toContain('meta=yes');
  // A step's writes go to its own layer: the artifact (and the next step's image) is unchanged.
  expect(r.logs.get('plan.2')).toContain('NAME=made-by-a-step');
  expect(await notesOf(h.nc, r.buildId, 'plan.1')).toContain('image: the rootfs of artifact img');
});

test('image: naming no artifact errors the step, saying which exist', async () => {
  const r = await h.run(`plan:\n- ${task('nope', 'true', { image: 'missing' })}`);
  expect(r.status).toBe('errored');
  expect(r.message).toMatch(/image missing: no such artifact/);
});

// A cold build of the image (mmdebstrap from Debian's mirror) takes minutes; .ci/run builds it
// before the tests, and a second run finds it cached.
const BUILD_MS = 20 * 60_000;

test(
  'examples/integration.yml runs unchanged on a worker whose default image has PostgreSQL (scripts/images/build.sh postgres)',
  async () => {
    const pushed = execFileSync(
      'bash',
      [path.resolve(__dirname, '../../scripts/images/build.sh'), '--push', containerd().registry, 'postgres'],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        timeout: BUILD_MS,
      },
    );
    const image = pushed.trim().split(' ')[1];
    const pg = await startContainerdHarness({ defaultImage: image });
    try {
      const r = await pg.run(fs.readFileSync(path.join(EXAMPLES, 'integration.yml'), 'utf8'), { file: 'examples/integration.yml' });
      expect([r.status, r.message]).toEqual(['succeeded', undefined]);
      expect(r.logs.get('plan.0')).toContain('integration test passed');
      expect(await notesOf(pg.nc, r.buildId, 'plan.0')).toContain(`image ${image}`);
    } finally {
      await pg.stop();
    }
  },
  BUILD_MS + 5 * 60_000,
);
