// fly's resource and job commands the CLI lacked (resources, disable-/enable-resource-version,
// rerun-build, schedule-job), each through the built CLI against the real stack as a fly user
// would use them.
import fs from 'node:fs';
import path from 'node:path';
import { pipelineReader, pipelineSuite } from './pipeline-cli';

const suite = pipelineSuite('fly-resources');
const { cli, ok } = suite;
const { ended, jobs } = pipelineReader(cli);

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
- name: broken
  type: mock
  check_every: never
  source: {check_failure: no such repo}

jobs:
- name: unit
  plan:
  - get: repo
    trigger: true
  - task: test
    config:
      platform: linux
      inputs: [{name: repo}]
      run: {path: cat, args: [repo/version]}
- name: tools
  disable_reruns: true
  plan:
  - get: tool
  - get: broken
`;

async function setPipeline(name: string): Promise<void> {
  const file = path.join(suite.dir, `${name}.yml`);
  fs.writeFileSync(file, PIPELINE);
  await ok('set-pipeline', '-n', '-p', name, '-c', file);
}

test("resources lists a pipeline's resources as fly: type, pinned version, check status", async () => {
  await setPipeline('rs');
  const fresh = await ok('resources', '-p', 'rs');
  expect(
    fresh.stdout
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s{2,}/)),
  ).toEqual([
    ['name', 'type', 'pinned', 'check status'],
    ['repo', 'mock', 'n/a', 'n/a'],
    ['tool', 'mock', 'version:v1', 'n/a'],
    ['broken', 'mock', 'n/a', 'n/a'],
  ]);

  await ok('check-resource', '-r', 'rs/repo', '-f', 'version:one');
  await ok('pin-resource', '-r', 'rs/repo', '-v', 'version:one', '-c', 'hold');
  expect((await cli('check-resource', '-r', 'rs/broken')).code).toBe(2);
  const checked = await ok('rs', '-p', 'rs');
  expect(checked.stdout).toMatch(/repo\s+mock\s+version:one\s+succeeded/);
  expect(checked.stdout).toMatch(/broken\s+mock\s+n\/a\s+failed/);
  expect(checked.stderr).toContain('broken: last check failed: ');
  expect(checked.stderr).toContain('no such repo');

  const rows = JSON.parse((await ok('resources', '-p', 'rs', '--json')).stdout) as Record<string, unknown>[];
  expect(rows.map((r) => r.name)).toEqual(['repo', 'tool', 'broken']);
  expect(rows[0]).toEqual(
    expect.objectContaining({
      name: 'repo',
      pipeline_name: 'rs',
      type: 'mock',
      pinned_version: { version: 'one' },
      pin_comment: 'hold',
      check_status: 'succeeded',
      last_checked: expect.any(Number),
    }),
  );
  expect(rows[0].pinned_in_config).toBeUndefined();
  expect(rows[1]).toEqual({ name: 'tool', pipeline_name: 'rs', type: 'mock', pinned_version: { version: 'v1' }, pinned_in_config: true });
  expect(rows[2]).toEqual(expect.objectContaining({ check_status: 'failed', check_error: expect.stringContaining('no such repo') }));
  // As Concourse (ErrPinnedThroughConfig): the file's pin is moved by the file.
  const overFile = await cli('pin-resource', '-r', 'rs/tool', '-v', 'version:v2');
  expect(overFile.code).toBe(2);
  expect(overFile.stderr).toContain(`resource rs/tool is pinned in the pipeline's file (version: {"version":"v1"})`);

  const none = await cli('resources', '-p', 'nope');
  expect(none.code).toBe(2);
  expect(none.stderr).toContain('no pipeline nope');
  await ok('destroy-pipeline', '-n', '-p', 'rs');
});

interface VersionRow {
  id: number;
  version: Record<string, string>;
  enabled: boolean;
  pinned: boolean;
}

const next = async (pipeline: string, job: string): Promise<string> =>
  (JSON.parse((await ok('jobs', '-p', pipeline, '--json')).stdout) as { name: string; next: string }[]).find((j) => j.name === job)!.next;

test('disable-resource-version: no build gets the version (but a pin of it) until enable-resource-version', async () => {
  await setPipeline('drv');
  await ok('check-resource', '-r', 'drv/repo', '-f', 'version:one');
  await ok('check-resource', '-r', 'drv/repo', '-f', 'version:two');
  expect(await next('drv', 'unit')).toBe('repo@version:two');

  expect((await ok('disable-resource-version', '-r', 'drv/repo', '-v', 'version:two')).stderr).toContain(
    `disabled 'drv/repo' with version {"version":"two"}`,
  );
  const rows = JSON.parse((await ok('resource-versions', '-r', 'drv/repo', '--json')).stdout) as VersionRow[];
  expect(rows.map((r) => [r.version.version, r.enabled])).toEqual([
    ['two', false],
    ['one', true],
  ]);
  expect((await ok('rvs', '-r', 'drv/repo')).stdout).toMatch(
    /^id\s+version\s+enabled\s+pinned\n2\s+version:two\s+no\s+no\n1\s+version:one\s+yes\s+no\n$/,
  );
  expect(await next('drv', 'unit')).toBe('repo@version:one');

  // The build gets the newest enabled version.
  await ok('unpause-pipeline', '-p', 'drv');
  const built = await ok('trigger-job', '-j', 'drv/unit', '-w');
  expect(built.stdout).toContain('one');
  expect(built.stdout).not.toContain('two');

  // As Concourse's pinned resolver: a pin of a disabled version is taken.
  await ok('pin-resource', '-r', 'drv/repo', '-v', 'version:two');
  expect(await next('drv', 'unit')).toBe('repo@version:two');
  await ok('unpin-resource', '-r', 'drv/repo');

  expect((await ok('erv', '-r', 'drv/repo', '-v', 'version:two')).stderr).toContain(`enabled 'drv/repo' with version {"version":"two"}`);
  expect(await next('drv', 'unit')).toBe('repo@version:two');
  expect((await ok('drv', '-r', 'drv/repo', '-v', 'version:one')).stderr).toContain(`disabled 'drv/repo' with version {"version":"one"}`);

  const missing = await cli('disable-resource-version', '-r', 'drv/repo', '-v', 'version:nope');
  expect(missing.code).toBe(2);
  expect(missing.stderr).toContain('could not find version matching {"version":"nope"} of drv/repo');
  const noVersion = await cli('enable-resource-version', '-r', 'drv/repo');
  expect(noVersion.code).toBe(1);
  expect(noVersion.stderr).toContain('the required flag `-v, --version` was not specified');
  const noResource = await cli('disable-resource-version', '-r', 'drv/nope', '-v', 'version:one');
  expect(noResource.code).toBe(2);
  expect(noResource.stderr).toContain('no resource nope in pipeline drv');
  await ok('destroy-pipeline', '-n', '-p', 'drv');
});

test('rerun-build: a new build of the job with the versions of build -b, numbered on; -w follows it', async () => {
  await setPipeline('rb');
  await ok('check-resource', '-r', 'rb/repo', '-f', 'version:one');
  await ok('unpause-pipeline', '-p', 'rb');
  expect(await ended('rb', 'unit', 1)).toBe('succeeded');
  await ok('check-resource', '-r', 'rb/repo', '-f', 'version:two');
  expect(await ended('rb', 'unit', 2)).toBe('succeeded');

  const rerun = await ok('rerun-build', '-j', 'rb/unit', '-b', '1', '-w');
  expect(rerun.stderr).toContain('started rb/unit #3, a rerun of #1 (build build-rb:unit:3)');
  expect(rerun.stdout).toContain('one');
  expect(rerun.stdout).not.toContain('two');
  // The pipeline sees the end a poll later.
  expect(await ended('rb', 'unit', 3)).toBe('succeeded');
  expect((await jobs('rb')).unit.builds[2]).toEqual({ number: 3, status: 'succeeded', id: 'build-rb:unit:3', rerun_of: 1 });
  // A rerun of a rerun reruns the first build (alias rb, as fly's).
  expect((await ok('rb', '-j', 'rb/unit', '-b', '3')).stderr).toContain('started rb/unit #4, a rerun of #1');
  expect(await ended('rb', 'unit', 4)).toBe('succeeded');
  expect((await jobs('rb')).unit.builds[3]).toMatchObject({ number: 4, rerun_of: 1 });

  const missing = await cli('rerun-build', '-j', 'rb/unit', '-b', '9');
  expect(missing.code).toBe(2);
  expect(missing.stderr).toContain('job rb/unit has no build #9');
  const dotted = await cli('rerun-build', '-j', 'rb/unit', '-b', '1.1');
  expect(dotted.code).toBe(2);
  expect(dotted.stderr).toContain('-b takes a build number (1, 2, ...), got 1.1');
  await ok('pause-job', '-j', 'rb/unit');
  await ok('trigger-job', '-j', 'rb/unit');
  const pending = await cli('rerun-build', '-j', 'rb/unit', '-b', '5');
  expect(pending.code).toBe(2);
  expect(pending.stderr).toContain('rb/unit #5 is pending: rerun a build that has started');
  const disabled = await cli('rerun-build', '-j', 'rb/tools', '-b', '1');
  expect(disabled.code).toBe(2);
  expect(disabled.stderr).toContain('job rb/tools has disable_reruns: true');
  await ok('destroy-pipeline', '-n', '-p', 'rb');
});

test("schedule-job asks the pipeline for a scheduling pass: fly's message, an unknown job refused", async () => {
  await setPipeline('sj');
  await ok('check-resource', '-r', 'sj/repo', '-f', 'version:one');
  await ok('unpause-pipeline', '-p', 'sj');
  expect((await ok('schedule-job', '-j', 'sj/unit')).stderr).toContain("scheduled 'unit'");
  expect(await ended('sj', 'unit', 1)).toBe('succeeded');
  // A pass with nothing new starts nothing.
  expect((await ok('sj', '-j', 'sj/unit')).stderr).toContain("scheduled 'unit'");
  expect((await jobs('sj')).unit.builds.map((b) => b.number)).toEqual([1]);
  const unknown = await cli('schedule-job', '-j', 'sj/nope');
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toContain('no job nope in pipeline sj');
  await ok('destroy-pipeline', '-n', '-p', 'sj');
});
