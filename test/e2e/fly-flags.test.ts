// fly's flags that the CLI refused as unknown options, each through the built CLI against the
// real stack as a fly user would use it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startHarness, waitFor, type Harness } from '../workflows/harness';
import { requireBuiltCli, runCli, type CliResult } from './cli-runner';

jest.setTimeout(600_000);
let h: Harness;
let dir: string;

beforeAll(async () => {
  requireBuiltCli();
  h = await startHarness({ killGraceMs: 1000 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-fly-flags-'));
});
afterAll(async () => {
  await h.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const cli = (args: string[], env: Record<string, string> = {}): Promise<CliResult> => runCli(args, { cwd: dir, queue: h.taskQueue, env });
const ok = async (...args: string[]): Promise<CliResult> => {
  const r = await cli(args);
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

test('check-resource --shallow checks the resource, as every check here does', async () => {
  const file = path.join(dir, 'shallow.yml');
  fs.writeFileSync(file, PIPELINE);
  await ok('set-pipeline', '-n', '-p', 'shallow', '-c', file);
  // check-resource --shallow is a check like any other here (no type chain to check first).
  expect((await ok('check-resource', '-r', 'shallow/repo', '--shallow', '-f', 'version:one')).stderr).toContain(
    'checked shallow/repo: 1 new version',
  );

  await ok('destroy-pipeline', '-n', '-p', 'shallow');
});

test('--team: the one team is accepted, any other refused before anything is done', async () => {
  const file = path.join(dir, 'team.yml');
  fs.writeFileSync(file, PIPELINE);
  const other = await cli(['set-pipeline', '-n', '-p', 'team', '-c', file, '--team', 'other']);
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
  const ci = await cli(['jobs', '-p', 'team', '--team', 'main'], { CAUSEWAY_CREDS_TEAM: 'ci' });
  expect(ci.code).toBe(2);
  expect(ci.stderr).toContain('--team main: this Causeway serves one team, ci');
  expect((await cli(['jobs', '-p', 'team', '--team', 'ci'], { CAUSEWAY_CREDS_TEAM: 'ci' })).code).toBe(0);
  expect((await cli(['abort', 'build-nope', '--team', 'x'])).stderr).toContain('--team x: this Causeway serves one team');
  await ok('destroy-pipeline', '-n', '-p', 'team', '--team', 'main');
});

test("workers -d shows each worker's task queue, when it started and its running steps", async () => {
  const plan = path.join(dir, 'sleep.yml');
  fs.writeFileSync(plan, SLEEP);
  const buildId = (await ok('run', plan, '--detach')).stdout.trim();
  await stepRunning(buildId);
  const details = await ok('workers', '-d');
  expect(details.stdout).toMatch(/TASK QUEUE\s+STARTED\s+RUNNING STEPS/);
  expect(details.stdout).toContain(h.taskQueue);
  expect(details.stdout).toContain(`${buildId}/`);
  expect(JSON.parse((await ok('workers', '-d', '--json')).stdout)).toEqual(
    expect.arrayContaining([expect.objectContaining({ taskQueue: h.taskQueue })]),
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
  const plan = path.join(dir, 'sleep.yml');
  fs.writeFileSync(plan, SLEEP);
  const buildId = (await ok('run', plan, '--detach')).stdout.trim();
  await stepRunning(buildId);
  const forced = await ok('abort', buildId, '--force');
  expect(forced.stderr).toContain(`build ${buildId} forcefully aborted`);
  const watched = await cli(['watch', buildId]);
  expect(watched.code).toBe(2);
  expect(watched.stdout + watched.stderr).toContain('terminated: aborted with --force');
  expect((await ok('abort', buildId, '--force')).stderr).toContain('already ended');
  // What the build left running is the reconciler's, as --help says.
  expect((await ok('reconcile')).stderr).toContain(`of closed build ${buildId}`);
});
