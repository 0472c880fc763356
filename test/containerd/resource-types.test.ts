// A resource type that is an image (Concourse's custom resource_types) on the containerd
// runtime: check, in and out run as /opt/resource/SCRIPT in a container of the type's image,
// with the protocol unchanged and the worker's network. The image (scripts/images/build.sh test-resource: busybox plus
// three shell scripts) is built offline and pushed to the run's local registry, which serves
// docker.io's names.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { leasedBuilds } from '../../activities/runtime/local/isolation';
import { requireBuiltCli, runCli } from '../e2e/cli-runner';
import { pipelineReader } from '../e2e/pipeline-cli';
import type { Harness } from '../workflows/harness';
import { containerd, ctr, mountsOf, startContainerdHarness } from './harness';

let h: Harness;
beforeAll(async () => {
  const layout = execFileSync('bash', [path.resolve(__dirname, '../../scripts/images/build.sh'), 'test-resource'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
    .trim()
    .split(' ')[1];
  execFileSync(
    'skopeo',
    ['copy', '--quiet', '--dest-tls-verify=false', layout, `docker://${containerd().registry}/causeway-test/stamp-resource:latest`],
    { stdio: 'inherit' },
  );
  h = await startContainerdHarness();
});
afterAll(async () => {
  await h.stop();
});

test('check, get and put of a resource type image run its /opt/resource scripts in containers of it, with the network', async () => {
  const probe = `http://${containerd().registry}/v2/`;
  const r = await h.run(
    `
resource_types:
- {name: stamp, type: registry-image, source: {repository: causeway-test/stamp-resource}}
resources:
- {name: s, type: stamp, source: {color: blue, probe: '${probe}'}}
jobs:
- name: j
  plan:
  - get: s
  - task: make
    config:
      platform: linux
      outputs: [{name: made}]
      run: {path: sh, args: [-c, 'echo 7 > made/n']}
  - put: s
    params: {file: made/n}
  - task: show
    config:
      platform: linux
      inputs: [{name: s}]
      run: {path: sh, args: [-c, 'cat s/n s/request.json']}
`,
    { job: 'j' },
  );
  expect(r.status).toBe('succeeded');
  const steps = r.summary?.steps ?? [];
  // check listed 1 and 2: the get fetched the newest.
  expect(steps.find((s) => s.id === 'plan.0')?.resource?.version).toEqual({ n: '2' });
  const source = JSON.stringify({ color: 'blue', probe });
  expect(r.logs.get('plan.0')).toContain(`stamp check in causeway-busybox as uid 0: {"source":${source},"version":null}`);
  // The worker's network: the local registry on 127.0.0.1 answered.
  expect(r.logs.get('plan.0')).toContain(`stamp check: reached ${probe}`);
  expect(r.logs.get('plan.0')).toContain('stamp in: fetched 2 into /tmp/build/');
  // out read the put's input; the implicit get fetched what it made into `s`.
  expect(r.logs.get('plan.2')).toContain('stamp out: made 7 from made/n');
  expect(steps.find((s) => s.id === 'plan.2')?.resource?.version).toEqual({ n: '7' });
  expect(r.logs.get('plan.3')).toContain(`7\n{"source":${source},"version":{"n":"7"},"params":{}}`);
  expect(ctr(['containers', 'ls', '-q', `labels."causeway.build"==${r.buildId}`]).trim()).toBe('');
  expect(mountsOf(h.home, r.buildId)).toEqual([]);
});

test("a resource type image that cannot be pulled errors the get with the registry's words", async () => {
  const r = await h.run(
    `
resource_types:
- {name: gone, type: registry-image, source: {repository: causeway-test/no-such-resource}}
resources: [{name: g, type: gone, source: {}}]
jobs: [{name: j, plan: [{get: g}]}]
`,
    { job: 'j' },
  );
  expect(r.status).toBe('errored');
  expect(r.message).toMatch(/causeway-test\/no-such-resource:latest: not found/);
});

test('a resource type with privileged: true runs its scripts in privileged containers', async () => {
  const caps = async (privileged: boolean): Promise<string> => {
    const r = await h.run(
      `
resource_types:
- {name: stamp, type: registry-image, privileged: ${privileged}, source: {repository: causeway-test/stamp-resource}}
resources: [{name: s, type: stamp, source: {}}]
jobs: [{name: j, plan: [{get: s}]}]
`,
      { job: 'j' },
    );
    expect(r.status).toBe('succeeded');
    return /stamp check capabilities: ([0-9a-f]+)/.exec(r.logs.get('plan.0') ?? '')?.[1] ?? 'none';
  };
  const [plain, privileged] = [await caps(false), await caps(true)];
  expect(plain).toMatch(/^[0-9a-f]{16}$/);
  // Concourse's privileged: the worker's capabilities, a superset of the default ones.
  expect(BigInt(`0x${privileged}`) & BigInt(`0x${plain}`)).toBe(BigInt(`0x${plain}`));
  expect(privileged).not.toBe(plain);
});

test("a pipeline checks a resource of an image type in a container of the type's image; a trigger: true job runs on what it found", async () => {
  requireBuiltCli();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-image-check-'));
  const cli = (...args: string[]) => runCli(args, { cwd: dir, queue: h.taskQueue });
  try {
    fs.writeFileSync(
      path.join(dir, 'p.yml'),
      `
resource_types:
- {name: stamp, type: registry-image, source: {repository: causeway-test/stamp-resource}}
resources:
- {name: s, type: stamp, check_every: never, source: {color: green}}
jobs:
- name: j
  plan:
  - get: s
    trigger: true
  - task: show
    config:
      platform: linux
      inputs: [{name: s}]
      run: {path: sh, args: [-c, 'echo "got $(cat s/n)"']}
`,
    );
    expect(await cli('set-pipeline', '-n', '-p', 'stamped', '-c', 'p.yml')).toMatchObject({ code: 0 });
    expect(await cli('unpause-pipeline', '-p', 'stamped')).toMatchObject({ code: 0 });
    const checked = await cli('check-resource', '-r', 'stamped/s');
    expect(checked).toMatchObject({ code: 0 });
    const versions = JSON.parse((await cli('resource-versions', '-r', 'stamped/s', '--json')).stdout) as { version: { n: string } }[];
    expect(versions.map((v) => v.version.n).sort()).toEqual(['1', '2']);
    // Nothing of the check is left: no container of a check's build id, no lease.
    expect(
      ctr(['containers', 'ls', '-q'])
        .split('\n')
        .filter((c) => c.includes('check-')),
    ).toEqual([]);
    expect((await leasedBuilds(h.home)).filter((id) => id.startsWith('check-'))).toEqual([]);
    // The newest version triggers the job, which fetches it.
    const reader = pipelineReader(cli);
    expect(await reader.ended('stamped', 'j', 1)).toBe('succeeded');
    const watched = await cli('watch', (await reader.jobs('stamped')).j.builds[0].id);
    expect(watched.stdout).toContain('got 2');
  } finally {
    await cli('destroy-pipeline', '-n', '-p', 'stamped');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("a pipeline's check of an image type whose image cannot be pulled fails with the registry's words and leaves no lease", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-image-check-gone-'));
  const cli = (...args: string[]) => runCli(args, { cwd: dir, queue: h.taskQueue });
  try {
    fs.writeFileSync(
      path.join(dir, 'p.yml'),
      `
resource_types:
- {name: gone, type: registry-image, source: {repository: causeway-test/no-such-resource}}
resources: [{name: g, type: gone, check_every: never, source: {}}]
jobs: [{name: j, plan: [{get: g, trigger: true}]}]
`,
    );
    expect(await cli('set-pipeline', '-n', '-p', 'gone', '-c', 'p.yml')).toMatchObject({ code: 0 });
    const checked = await cli('check-resource', '-r', 'gone/g');
    expect(checked.code).not.toBe(0);
    expect(checked.stderr).toMatch(/resource g: .*causeway-test\/no-such-resource:latest: not found/s);
    expect((await leasedBuilds(h.home)).filter((id) => id.startsWith('check-'))).toEqual([]);
  } finally {
    await cli('destroy-pipeline', '-n', '-p', 'gone');
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
