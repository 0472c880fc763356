// fly's resource and build commands the CLI lacked (resources, disable-/enable-resource-version,
// rerun-build), each through the built CLI against the real stack as a fly user would use them.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startHarness, type Harness } from '../workflows/harness';
import { requireBuiltCli, runCli, type CliResult } from './cli-runner';

jest.setTimeout(600_000);
let h: Harness;
let dir: string;

beforeAll(async () => {
  requireBuiltCli();
  h = await startHarness({ killGraceMs: 1000 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-fly-resources-'));
});
afterAll(async () => {
  await h.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const cli = (...args: string[]): Promise<CliResult> => runCli(args, { cwd: dir, queue: h.taskQueue });
const ok = async (...args: string[]): Promise<CliResult> => {
  const r = await cli(...args);
  if (r.code !== 0) throw new Error(`${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r;
};

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
  plan:
  - get: tool
  - get: broken
`;

async function setPipeline(name: string): Promise<void> {
  const file = path.join(dir, `${name}.yml`);
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

  const none = await cli('resources', '-p', 'nope');
  expect(none.code).toBe(2);
  expect(none.stderr).toContain('no pipeline nope');
  await ok('destroy-pipeline', '-n', '-p', 'rs');
});
