// The versions a job's puts make, as Concourse's SaveOutput records them when the put succeeds:
// a build that fails or is aborted after its put still records the version (gets without
// `passed` see it, `passed` does not), a put aborted before it ended records nothing, and a put
// inside a big fan-out's child workflow reaches the pipeline too.
import fs from 'node:fs';
import path from 'node:path';
import { nodeScript, pipelineReader, pipelineSuite } from './pipeline-cli';
import { waitFor } from '../workflows/harness';

const suite = pipelineSuite('pipeline-outputs', {
  // Steps run as their build's uid: they run the type's scripts from here.
  shared: true,
});
const { cli } = suite;

beforeAll(() => {
  // A resource type as a directory: out makes the version its params name, in writes it to `v`.
  const type = path.join(suite.dir, 'stamp');
  fs.mkdirSync(type, { mode: 0o755 });
  fs.writeFileSync(path.join(type, 'check'), nodeScript(`process.stdout.write('[]');`), { mode: 0o755 });
  fs.writeFileSync(
    path.join(type, 'in'),
    nodeScript(`fs.writeFileSync(process.argv[2] + '/v', req.version.v);
process.stdout.write(JSON.stringify({ version: req.version, metadata: [] }));`),
    { mode: 0o755 },
  );
  // With params.hold, out marks that it runs and never ends: an abort must end it.
  fs.writeFileSync(
    path.join(type, 'out'),
    nodeScript(`if (req.params.hold) {
  fs.writeFileSync(req.params.hold, String(process.pid));
  setInterval(() => undefined, 1000);
} else process.stdout.write(JSON.stringify({ version: { v: req.params.v }, metadata: [] }));`),
    {
      mode: 0o755,
    },
  );
  // Where the builds' steps (their build's uid) leave their marks.
  fs.mkdirSync(path.join(suite.dir, 'marks'), { mode: 0o777 });
  fs.chmodSync(path.join(suite.dir, 'marks'), 0o777);
});

const { buildLines, ended } = pipelineReader(cli);

async function versions(pipeline: string, resource: string): Promise<string[]> {
  const r = await cli('resource-versions', '-r', `${pipeline}/${resource}`, '--json');
  expect(r.code).toBe(0);
  return (JSON.parse(r.stdout) as { version: { v: string } }[]).map((v) => v.version.v);
}

const SHOW = `
  - task: show
    config:
      platform: linux
      inputs: [{name: image}]
      run: {path: sh, args: [-c, 'echo "got $(cat image/v)"']}`;

const PIPELINE = `
resource_types:
- {name: stamp, type: directory, source: {path: stamp}}
resources:
- {name: image, type: stamp, check_every: never, source: {}}
jobs:
- name: build
  plan:
  - put: image
    params: {v: one}
    no_get: true
  - task: fails-after-the-put
    config: {platform: linux, run: {path: sh, args: [-c, 'exit 1']}}
- name: fan
  plan:
  # 101 activities at most: the list runs in two child workflows, the put in the first.
  - in_parallel:
    - put: image
      params: {v: two}
      no_get: true
    - task: heavy
      attempts: 100
      config: {platform: linux, run: {path: 'true'}}
- name: deploy
  plan:
  - get: image
    trigger: true
    passed: [build]${SHOW}
- name: ship
  plan:
  - get: image
    trigger: true
    passed: [fan]${SHOW}
- name: scan
  plan:
  - get: image
    trigger: true${SHOW}
`;

test("a failed build's put is a version that gets see and passed does not; a fan-out part's put passes", async () => {
  fs.writeFileSync(path.join(suite.dir, 'outputs.yml'), PIPELINE);
  expect((await cli('set-pipeline', '-n', '-p', 'outputs', '-c', 'outputs.yml')).code).toBe(0);
  expect((await cli('unpause-pipeline', '-p', 'outputs')).code).toBe(0);

  // build puts `one`, then fails: the version is recorded and scan (no passed) builds it.
  expect((await cli('trigger-job', '-j', 'outputs/build')).code).toBe(0);
  expect(await ended('outputs', 'build', 1)).toBe('failed');
  expect(await versions('outputs', 'image')).toEqual(['one']);
  expect(await ended('outputs', 'scan', 1)).toBe('succeeded');
  expect((await cli('watch', 'build-outputs:scan:1')).stdout).toContain('got one');

  // fan's put runs in a child workflow (a part): its version is recorded and passed fan.
  expect((await cli('trigger-job', '-j', 'outputs/fan')).code).toBe(0);
  expect(await ended('outputs', 'fan', 1)).toBe('succeeded');
  expect(await ended('outputs', 'ship', 1)).toBe('succeeded');
  expect((await cli('watch', 'build-outputs:ship:1')).stdout).toContain('got two');
  expect(await versions('outputs', 'image')).toEqual(['two', 'one']);
  expect(await ended('outputs', 'scan', 2)).toBe('succeeded');

  // deploy (passed: [build]) never had a version: build never succeeded.
  const all = await buildLines('outputs');
  expect(all.deploy).toEqual([]);
  expect(all.build).toEqual(['#1 failed']);
  expect((await cli('destroy-pipeline', '-n', '-p', 'outputs')).code).toBe(0);
});

test('an aborted build keeps the version its put made before the abort; a put aborted mid-way saves nothing', async () => {
  const marks = path.join(suite.dir, 'marks');
  const after = path.join(marks, 'after-put');
  const during = path.join(marks, 'during-put');
  fs.writeFileSync(
    path.join(suite.dir, 'aborts.yml'),
    `
resource_types:
- {name: stamp, type: directory, source: {path: stamp}}
resources:
- {name: image, type: stamp, check_every: never, source: {}}
jobs:
- name: put-then-wait
  plan:
  - put: image
    params: {v: three}
    no_get: true
  - task: wait
    config: {platform: linux, run: {path: sh, args: [-c, 'touch ${after}; sleep 600']}}
- name: held-put
  plan:
  - put: image
    params: {v: four, hold: ${during}}
    no_get: true
- name: after
  plan:
  - get: image
    trigger: true
    passed: [put-then-wait]${SHOW}
`,
  );
  expect((await cli('set-pipeline', '-n', '-p', 'aborts', '-c', 'aborts.yml')).code).toBe(0);
  expect((await cli('unpause-pipeline', '-p', 'aborts')).code).toBe(0);

  // The put succeeded, the next task runs: an abort now leaves the put's version recorded.
  expect((await cli('trigger-job', '-j', 'aborts/put-then-wait')).code).toBe(0);
  await waitFor('the task after the put to start', () => fs.existsSync(after), 120_000);
  expect((await cli('abort', 'build-aborts:put-then-wait:1')).code).toBe(0);
  expect(await ended('aborts', 'put-then-wait', 1)).toBe('aborted');
  expect(await versions('aborts', 'image')).toEqual(['three']);

  // out runs when the abort comes: it is ended, and no version is recorded.
  expect((await cli('trigger-job', '-j', 'aborts/held-put')).code).toBe(0);
  const pid = Number(await waitFor('out to start', () => fs.existsSync(during) && fs.readFileSync(during, 'utf8'), 120_000));
  expect((await cli('abort', 'build-aborts:held-put:1')).code).toBe(0);
  expect(await ended('aborts', 'held-put', 1)).toBe('aborted');
  await waitFor('the aborted out to be gone', () => !isAlive(pid), 60_000);
  expect(await versions('aborts', 'image')).toEqual(['three']);

  // passed: counts only a succeeded build's outputs: `after` never ran.
  expect((await buildLines('aborts')).after).toEqual([]);
  expect((await cli('destroy-pipeline', '-n', '-p', 'aborts')).code).toBe(0);
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
