// fly's flags that the CLI refused as unknown options, each through the built CLI against the
// real stack as a fly user would use it.
import fs from 'node:fs';
import path from 'node:path';
import { waitFor } from '../workflows/harness';
import { pipelineSuite } from './pipeline-cli';

const suite = pipelineSuite('fly-flags');
const { cli, cliEnv, ok } = suite;

const PIPELINE = `
resources:
- name: repo
  type: mock
  check_every: never
  source: {no_initial_version: true}
- name: tool
  type: mock
  check_every: never
  version: {version: v1}
  source: {no_initial_version: true}

jobs:
- name: unit
  plan:
  - get: repo
  - get: tool
  - task: test
    config:
      platform: linux
      inputs: [{name: repo}]
      run: {path: cat, args: [repo/version]}
`;

/** Sets PIPELINE as pipeline `name` (paused, as a new one is); returns its file. */
async function setPipeline(name: string): Promise<string> {
  const file = path.join(suite.dir, `${name}.yml`);
  fs.writeFileSync(file, PIPELINE);
  await ok('set-pipeline', '-n', '-p', name, '-c', file);
  return file;
}

interface VersionRow {
  id: number;
  version: Record<string, string>;
  pinned: boolean;
  pin_comment?: string;
}

async function versions(resource: string): Promise<VersionRow[]> {
  return JSON.parse((await ok('resource-versions', '-r', resource, '--json')).stdout) as VersionRow[];
}

const pinnedRows = async (resource: string) =>
  (await versions(resource)).filter((v) => v.pinned).map((v) => ({ version: v.version.version, comment: v.pin_comment }));

test('pin-resource -c saves a comment with the pin, shown by resource-versions, kept by a new pin, dropped by unpin', async () => {
  const file = await setPipeline('pins');
  await ok('check-resource', '-r', 'pins/repo', '-f', 'version:one');
  await ok('check-resource', '-r', 'pins/repo', '-f', 'version:two');

  // As fly: neither -v nor -c is a usage error; a comment needs a pin.
  const neither = await cli('pin-resource', '-r', 'pins/repo');
  expect(neither.code).toBe(1);
  expect(neither.stderr).toContain('the required flag `-v, --version` was not specified');
  const unpinned = await cli('pin-resource', '-r', 'pins/repo', '-c', 'why');
  expect(unpinned.code).toBe(2);
  expect(unpinned.stderr).toContain("could not save comment, make sure 'pins/repo' is pinned");

  const pinned = await ok('pin-resource', '-r', 'pins/repo', '-v', 'version:one', '-c', 'two breaks the docs');
  expect(pinned.stderr).toContain(`pinned 'pins/repo' with version {"version":"one"}`);
  expect(pinned.stderr).toContain("pin comment 'two breaks the docs' is saved");
  expect(await pinnedRows('pins/repo')).toEqual([{ version: 'one', comment: 'two breaks the docs' }]);
  expect((await ok('resource-versions', '-r', 'pins/repo')).stderr).toContain('pinned to version:one: two breaks the docs');

  // A pin made again keeps its comment (Concourse's); -c alone changes it.
  await ok('pin-resource', '-r', 'pins/repo', '-v', 'version:two');
  expect(await pinnedRows('pins/repo')).toEqual([{ version: 'two', comment: 'two breaks the docs' }]);
  expect((await ok('pin-resource', '-r', 'pins/repo', '-c', 'waiting on upstream')).stderr).toContain(
    "pin comment 'waiting on upstream' is saved",
  );
  expect(await pinnedRows('pins/repo')).toEqual([{ version: 'two', comment: 'waiting on upstream' }]);

  expect((await ok('unpin-resource', '-r', 'pins/repo')).stderr).toContain("unpinned 'pins/repo'");
  expect(await pinnedRows('pins/repo')).toEqual([]);
  await ok('pin-resource', '-r', 'pins/repo', '-v', 'version:one');
  expect(await pinnedRows('pins/repo')).toEqual([{ version: 'one', comment: undefined }]);

  // A config pin takes a comment too, which setting the pipeline again clears (Concourse's resetResourcePins).
  await ok('check-resource', '-r', 'pins/tool', '-f', 'version:v1');
  await ok('pin-resource', '-r', 'pins/tool', '-c', 'held by the file');
  expect((await ok('resource-versions', '-r', 'pins/tool')).stderr).toContain(
    'pinned to version:v1 (by the pipeline file): held by the file',
  );
  await ok('set-pipeline', '-n', '-p', 'pins', '-c', file);
  expect(await pinnedRows('pins/tool')).toEqual([{ version: 'v1', comment: undefined }]);
  // ... but not the comment of a pin-resource pin.
  await ok('pin-resource', '-r', 'pins/repo', '-c', 'still here');
  await ok('set-pipeline', '-n', '-p', 'pins', '-c', file);
  expect(await pinnedRows('pins/repo')).toEqual([{ version: 'one', comment: 'still here' }]);

  await ok('destroy-pipeline', '-n', '-p', 'pins');
});

test('check-resource --shallow checks the resource, as every check here does', async () => {
  await setPipeline('shallow');
  // check-resource --shallow is a check like any other here (no type chain to check first).
  expect((await ok('check-resource', '-r', 'shallow/repo', '--shallow', '-f', 'version:one')).stderr).toContain(
    'checked shallow/repo: 1 new version',
  );

  await ok('destroy-pipeline', '-n', '-p', 'shallow');
});

test("execute --image takes a job's input as the task's image", async () => {
  await setPipeline('image');
  await ok('check-resource', '-r', 'image/repo', '-f', 'version:one');
  await ok('check-resource', '-r', 'image/tool', '-f', 'version:v1');
  // execute --image: a job's input as the task's image (the local runtime says it runs without one).
  const task = path.join(suite.dir, 'task.yml');
  fs.writeFileSync(task, 'platform: linux\ninputs: [{name: repo}]\nrun: {path: cat, args: [repo/version]}\n');
  const noJob = await cli('execute', '-c', task, '--image', 'tool');
  expect(noJob.code).toBe(2);
  expect(noJob.stderr).toContain('--image tool: must set --inputs-from when using --image');
  const noInput = await cli('execute', '-c', task, '-j', 'image/unit', '--image', 'nope');
  expect(noInput.code).toBe(2);
  expect(noInput.stderr).toContain('--image nope: image resource nope not found: job image/unit has no input nope');
  expect(noInput.stderr).toContain('its inputs: repo, tool');
  const imaged = await ok('execute', '-c', task, '-j', 'image/unit', '--image', 'tool');
  expect(imaged.stdout).toContain('one');
  expect(imaged.stdout + imaged.stderr).toContain('image_resource/image is ignored');
  const plain = await ok('execute', '-c', task, '-j', 'image/unit');
  expect(plain.stdout + plain.stderr).not.toContain('image_resource/image is ignored');

  await ok('destroy-pipeline', '-n', '-p', 'image');
});

test('--team: the one team is accepted, any other refused before anything is done', async () => {
  const file = path.join(suite.dir, 'team.yml');
  fs.writeFileSync(file, PIPELINE);
  const other = await cli('set-pipeline', '-n', '-p', 'team', '-c', file, '--team', 'other');
  expect(other.code).toBe(2);
  expect(other.stderr).toContain('--team other: this Causeway serves one team, main');
  expect(other.stderr).toContain('fix: drop --team, or give --team main');
  expect((await ok('pipelines')).stderr).toContain('no pipelines');
  await ok('set-pipeline', '-n', '-p', 'team', '-c', file, '--team', 'main');
  for (const args of [
    ['jobs', '-p', 'team'],
    ['get-pipeline', '-p', 'team'],
    ['pipelines'],
    ['pause-pipeline', '-p', 'team'],
    ['unpause-job', '-j', 'team/unit'],
    ['check-resource', '-r', 'team/repo', '-f', 'version:a'],
    ['resource-versions', '-r', 'team/repo'],
  ])
    await ok(...args, '--team', 'main');
  const ci = await cliEnv(['jobs', '-p', 'team', '--team', 'main'], { CAUSEWAY_CREDS_TEAM: 'ci' });
  expect(ci.code).toBe(2);
  expect(ci.stderr).toContain('--team main: this Causeway serves one team, ci');
  expect((await cliEnv(['jobs', '-p', 'team', '--team', 'ci'], { CAUSEWAY_CREDS_TEAM: 'ci' })).code).toBe(0);
  expect((await cli('abort', 'build-nope', '--team', 'x')).stderr).toContain('--team x: this Causeway serves one team');
  await ok('destroy-pipeline', '-n', '-p', 'team', '--team', 'main');
});

test("set-pipeline --check-creds looks the credential refs up in the workers' manager, or refuses without one", async () => {
  // Not `creds`: pipeline-creds.test.ts sets and destroys that one on the run's shared stack.
  const file = path.join(suite.dir, 'creds.yml');
  fs.writeFileSync(
    file,
    PIPELINE.replace('source: {no_initial_version: true}', 'source: {no_initial_version: true, token: ((api-token))}'),
  );
  const none = await cli('set-pipeline', '-n', '-p', 'fly-creds', '-c', file, '--check-creds');
  expect(none.code).toBe(2);
  expect(none.stderr).toContain('--check-creds: this shell names no credential manager (CAUSEWAY_CREDS or CAUSEWAY_CREDS_FILE)');
  const broken = await cliEnv(['set-pipeline', '-n', '-p', 'fly-creds', '-c', file, '--check-creds'], { CAUSEWAY_CREDS: '{type: nope}' });
  expect(broken.code).toBe(2);
  expect(broken.stderr).toContain('--check-creds: CAUSEWAY_CREDS:');
  expect(broken.stderr).not.toContain('credential validation failed');
  const dummy = (vars: Record<string, string>) => ({ CAUSEWAY_CREDS: JSON.stringify({ type: 'dummy', config: { vars } }) });
  const missing = await cliEnv(['set-pipeline', '-n', '-p', 'fly-creds', '-c', file, '--check-creds'], dummy({ other: 'x' }));
  expect(missing.code).toBe(2);
  expect(missing.stderr).toContain('credential validation failed');
  expect(missing.stderr).toMatch(/creds\.yml:\d+:\d+: .*undefined var `api-token`: not found in/);
  expect((await ok('pipelines')).stderr).toContain('no pipelines');
  const found = await cliEnv(
    ['set-pipeline', '-n', '-p', 'fly-creds', '-c', file, '--check-creds'],
    dummy({ 'main/fly-creds/api-token': 't' }),
  );
  expect(found.code).toBe(0);
  expect(found.stderr).toContain('credentials checked: 1 credential ref found');
  await ok('destroy-pipeline', '-n', '-p', 'fly-creds');
});

test("workers -d shows each worker's task queue, when it started and its running steps", async () => {
  const plan = path.join(suite.dir, 'sleep.yml');
  fs.writeFileSync(plan, SLEEP);
  const buildId = (await ok('run', plan, '--detach')).stdout.trim();
  await stepRunning(buildId);
  const details = await ok('workers', '-d');
  expect(details.stdout).toMatch(/TASK QUEUE\s+STARTED\s+RUNNING STEPS/);
  expect(details.stdout).toContain(suite.h.taskQueue);
  expect(details.stdout).toContain(`${buildId}/`);
  expect(JSON.parse((await ok('workers', '-d', '--json')).stdout)).toEqual(
    expect.arrayContaining([expect.objectContaining({ taskQueue: suite.h.taskQueue })]),
  );
  await ok('abort', buildId);
});

const SLEEP = 'plan:\n- task: nap\n  config:\n    platform: linux\n    run: {path: sleep, args: ["300"]}\n';

/** Waits until the worker lists a step of the build as running. */
const stepRunning = (buildId: string) =>
  waitFor(
    'the step to run on the worker',
    async () => ((await ok('workers', '--json')).stdout.includes(`${buildId}/`) ? true : undefined),
    60_000,
  );

test('abort --force terminates the build at once, leaving what it runs to the reconciler', async () => {
  const plan = path.join(suite.dir, 'sleep.yml');
  fs.writeFileSync(plan, SLEEP);
  const buildId = (await ok('run', plan, '--detach')).stdout.trim();
  await stepRunning(buildId);
  const forced = await ok('abort', buildId, '--force');
  expect(forced.stderr).toContain(`build ${buildId} forcefully aborted`);
  const watched = await cli('watch', buildId);
  expect(watched.code).toBe(2);
  expect(watched.stdout + watched.stderr).toContain('terminated: aborted with --force');
  expect((await ok('abort', buildId, '--force')).stderr).toContain('already ended');
  // What the build left running is the reconciler's, as --help says.
  expect((await ok('reconcile')).stderr).toContain(`of closed build ${buildId}`);
});
