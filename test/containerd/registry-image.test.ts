// The registry-image base resource type against the run's local registry (the containerd
// project's, which holds the busybox test image): check reports the tag's digest, in fetches the
// image as rootfs/ + metadata.json (format rootfs) or image.tar (format oci), out pushes an OCI
// tarball. The build runs on the local runtime: the type is a host executable (skopeo, umoci
// --rootless under the build's uid).
import fs from 'node:fs';
import path from 'node:path';
import { startHarness, type Harness } from '../workflows/harness';
import { containerd } from './harness';

let h: Harness;
beforeAll(async () => {
  if (!fs.existsSync(path.resolve(__dirname, '../../dist/resources/src/registry-image.js')))
    throw new Error('run `npm run build` first: the base resource types run from dist/');
  h = await startHarness();
});
afterAll(async () => {
  await h.stop();
});

test('get an image as a rootfs and as an OCI tarball, and put the tarball under another name', async () => {
  const registry = containerd().registry;
  const r = await h.run(
    `
resources:
- {name: img, type: registry-image, source: {repository: ${registry}/library/busybox, insecure: true}}
- {name: pushed, type: registry-image, source: {repository: ${registry}/causeway-test/pushed, tag: v1, insecure: true}}
jobs:
- name: j
  plan:
  - get: img
  - task: look
    config:
      platform: linux
      inputs: [{name: img}]
      run: {path: sh, args: [-c, 'grep ^ID= img/rootfs/etc/os-release; cat img/metadata.json; echo; cat img/repository img/digest']}
  - get: oci
    resource: img
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
  const look = r.logs.get('plan.1') ?? '';
  expect(look).toContain('ID=causeway-busybox');
  expect(look).toContain('{"env":["PATH=/bin"],"user":""}');
  expect(look).toContain(`${registry}/library/busybox${digest}`);
  // The same image pushed elsewhere: the registry keeps its manifest, so its digest is the same.
  expect(r.summary?.steps.find((s) => s.id === 'plan.3')?.resource?.version).toEqual({ digest });
});

test('a missing tag errors the get with the registry’s words', async () => {
  const registry = containerd().registry;
  const r = await h.run(
    `
resources:
- {name: img, type: registry-image, source: {repository: ${registry}/library/busybox, tag: no-such-tag, insecure: true}}
jobs:
- name: j
  plan: [{get: img}]
`,
    { job: 'j' },
  );
  expect(r.status).toBe('errored');
  expect(r.logs.get('plan.0')).toContain('manifest unknown');
});
