// A pipeline's check runs with no more privilege than a build step (activities/runtime/local/check.ts):
// on a root worker, under a uid of its own, which cannot read a repository only root can, the
// worker's environment, or another build's directory. An image type's check needs a worker with
// containers; with local-runtime workers only, it says so. Through the CLI against the real stack.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildUser, openBuildDir, releaseBuildUser } from '../../activities/runtime/local/isolation';
import { startHarness, type Harness } from '../workflows/harness';
import { requireBuiltCli, runCli, type CliResult } from './cli-runner';

jest.setTimeout(600_000);
let h: Harness;
let dir: string;
const OTHER_BUILD = 'other-build-of-check-isolation';

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('this test needs a root worker (checks only change uids as root)');
  requireBuiltCli();
  h = await startHarness({ killGraceMs: 1000 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-check-isolation-'));
  // The check's uid runs the type's script from here; the repository below is root's alone.
  fs.chmodSync(dir, 0o755);
  const secret = path.join(dir, 'secret');
  fs.mkdirSync(secret, { mode: 0o700 });
  const git = (...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd: secret, encoding: 'utf8' });
  git('init', '--quiet', '--initial-branch=main', 'repo');
  git('-C', 'repo', 'commit', '--quiet', '--allow-empty', '-m', 'root only');
  // Another build's directory, set up as the local runtime sets up a build's.
  const user = await buildUser(h.home, OTHER_BUILD);
  await openBuildDir(h.home, OTHER_BUILD, user);
  // A `directory` type whose check reports who it runs as and what it could read.
  const type = path.join(dir, 'probe');
  fs.mkdirSync(type, { mode: 0o755 });
  fs.writeFileSync(
    path.join(type, 'check'),
    [
      '#!/bin/sh',
      'cat >/dev/null',
      'can() { if "$@" >/dev/null 2>&1; then echo yes; else echo no; fi; }',
      `environ=$(can cat /proc/${process.pid}/environ)`,
      `other=$(can ls ${path.join(h.home, 'builds', OTHER_BUILD)})`,
      `printf '[{"uid":"%s","environ":"%s","other":"%s","home":"%s"}]' "$(id -u)" "$environ" "$other" "$HOME"`,
    ].join('\n'),
    { mode: 0o755 },
  );
  // A directory type needs all three; the jobs below never run.
  for (const script of ['in', 'out']) fs.writeFileSync(path.join(type, script), '#!/bin/sh\nexit 1\n', { mode: 0o755 });
  fs.writeFileSync(
    path.join(dir, 'pipeline.yml'),
    `
resource_types:
- {name: probe, type: directory, source: {path: ${type}}}
- {name: stamp, type: registry-image, source: {repository: causeway-test/stamp-resource}}
resources:
- {name: stamped, type: stamp, check_every: never, source: {}}
- {name: probe, type: probe, check_every: never, source: {}}
- {name: secret, type: git, check_every: never, source: {uri: 'file://${path.join(secret, 'repo')}', branch: main}}
jobs:
- name: j
  plan:
  - get: probe
  - get: secret
  - get: stamped
`,
  );
  const set = await cli('set-pipeline', '-n', '-p', 'iso', '-c', 'pipeline.yml');
  expect(set).toMatchObject({ code: 0 });
  expect(await cli('unpause-pipeline', '-p', 'iso')).toMatchObject({ code: 0 });
});
afterAll(async () => {
  await cli('destroy-pipeline', '-n', '-p', 'iso').catch(() => undefined);
  if (h) await releaseBuildUser(h.home, OTHER_BUILD);
  await h?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const cli = (...args: string[]): Promise<CliResult> => runCli(args, { cwd: dir, queue: h.taskQueue });

test('a check runs under a uid of its own: not root, without the worker environment or another build', async () => {
  const checked = await cli('check-resource', '-r', 'iso/probe');
  expect(checked.code).toBe(0);
  const versions = JSON.parse((await cli('resource-versions', '-r', 'iso/probe', '--json')).stdout) as {
    version: Record<string, string>;
  }[];
  expect(versions).toHaveLength(1);
  const seen = versions[0].version;
  expect(Number(seen.uid)).toBeGreaterThan(0);
  expect(seen).toMatchObject({ environ: 'no', other: 'no' });
  // Its scratch directory under CAUSEWAY_HOME/checks, gone once the check ended, with its uid's lease.
  expect(seen.home.startsWith(path.join(h.home, 'checks', 'check-'))).toBe(true);
  expect(fs.existsSync(seen.home)).toBe(false);
  expect(fs.readdirSync(path.join(h.home, 'build-uids', 'leases'))).not.toContain(seen.uid);
});

test("a check of a file:// repository only root can read fails with git's permission error", async () => {
  const checked = await cli('check-resource', '-r', 'iso/secret');
  expect(checked.code).not.toBe(0);
  expect(checked.stderr).toMatch(/resource secret: check exited \d+: .*(Permission denied|does not appear to be a git repository)/s);
});

test('a check of an image type with only local-runtime workers fails saying which runtime it needs', async () => {
  const checked = await cli('check-resource', '-r', 'iso/stamped');
  expect(checked.code).not.toBe(0);
  expect(checked.stderr).toContain(
    `resource stamped: its type is an image, and checking it needs a container: no running worker of task queue ${h.taskQueue} has a runtime that runs containers (containerd or kubernetes; workers here: ${h.worker.name} (local))`,
  );
});
