// Resources on the containerd runtime: a base type's scripts (registry-image here) run on the
// worker's host, so a `get` of an image from the run's local registry feeds a task's `image:`,
// which then runs in that rootfs; a put of a base type runs on the host as well.
import fs from 'node:fs';
import path from 'node:path';
import type { Harness } from '../workflows/harness';
import { containerd, ctr, mountsOf, notesOf, startContainerdHarness } from './harness';

let h: Harness;
beforeAll(async () => {
  if (!fs.existsSync(path.resolve(__dirname, '../../dist/resources/src/registry-image.js')))
    throw new Error('run `npm run build` first: the base resource types run from dist/');
  // No default image: a task without image_resource runs only in what its `image:` names.
  h = await startContainerdHarness({ defaultImage: null });
});
afterAll(async () => {
  await h.stop();
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
