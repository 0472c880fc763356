// No path the engine builds from a build's or a plan's names can leave CAUSEWAY_HOME: every
// place a name or path enters (build id, run id, step id, run key, input name, plan name,
// cache/input/output paths inside a step) is tried with hostile values, and the refusal is an
// error no retry repeats.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { safeJoin } from '../../activities/artifacts';
import { paths } from '../../activities/deps';
import { asPermanent } from '../../activities/permanent';
import { releaseBuildUser } from '../../activities/runtime/local/isolation';
import { PathEscapeError, openFileInside } from '../../activities/safe-path';

const home = '/var/lib/causeway';
const hostile = ['..', '.', '', '../../etc', 'a/../../..', '/etc', 'x/y', 'nul\0byte'];
const ok = 'fine-name.1';

const builders: [string, (v: string) => string][] = [
  ['build id', (v) => paths.build(home, v)],
  ['input name', (v) => paths.inputs(home, ok, v)],
  ['build id of an input', (v) => paths.inputs(home, v, ok)],
  ['build id of a step', (v) => paths.step(home, v, ok, ok, ok)],
  ['run id', (v) => paths.step(home, ok, v, ok, ok)],
  ['step id', (v) => paths.step(home, ok, ok, v, ok)],
  ['run key', (v) => paths.step(home, ok, ok, ok, v)],
  ['plan name of a cache', (v) => paths.cache(home, v, ok)],
  ['step id of a cache', (v) => paths.cache(home, ok, v)],
  ['pipeline of a job’s cache', (v) => paths.cache(home, ok, ok, v)],
  ['job of a job’s cache', (v) => paths.cache(home, v, ok, ok)],
  ['a path inside a step (cache, input, output, run.dir)', (v) => safeJoin(path.join(home, 'builds', ok, 'work'), v)],
];

describe.each(builders)('%s', (_what, build) => {
  test.each(hostile)('%j is refused, non-retryably', (value) => {
    let thrown: unknown;
    try {
      const p = build(value);
      // Reaching here is acceptable only if the path stayed inside home.
      expect(p.startsWith(`${home}/`)).toBe(true);
      return;
    } catch (err) {
      thrown = err;
    }
    const failure = asPermanent(thrown, 'step');
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect((failure as ApplicationFailure).nonRetryable).toBe(true);
    expect((failure as ApplicationFailure).message).toMatch(/leave/);
  });

  test('an ordinary name stays inside home', () => {
    expect(build(ok).startsWith(`${home}/`)).toBe(true);
  });
});

test('errno codes a plan causes are final; others stay retryable', () => {
  const err = (code: string) => Object.assign(new Error(`spawn sh ${code}`), { code });
  expect((asPermanent(err('E2BIG'), 'task t') as ApplicationFailure).nonRetryable).toBe(true);
  expect((asPermanent(err('ENAMETOOLONG'), 'task t') as ApplicationFailure).message).toBe('task t: spawn sh ENAMETOOLONG');
  expect((asPermanent(new Error('spawn /bin/sh E2BIG'), 'task t') as ApplicationFailure).nonRetryable).toBe(true);
  expect(asPermanent(err('ENOSPC'), 'task t')).toBeInstanceOf(Error);
  expect(asPermanent(err('ENOSPC'), 'task t')).not.toBeInstanceOf(ApplicationFailure);
});

test('a file of an artifact is read only inside the artifact, also through symbolic links a step wrote', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-read-inside-'));
  try {
    const artifact = path.join(root, 'artifact');
    fs.mkdirSync(path.join(artifact, 'ci'), { recursive: true });
    fs.writeFileSync(path.join(root, 'secret'), 'not for steps');
    fs.writeFileSync(path.join(artifact, 'ci', 'task.yml'), 'platform: linux');
    fs.symlinkSync('task.yml', path.join(artifact, 'ci', 'alias.yml'));
    fs.symlinkSync(path.join(root, 'secret'), path.join(artifact, 'ci', 'escape.yml'));
    fs.symlinkSync(root, path.join(artifact, 'ci', 'out'));

    const text = async (rel: string) => (await openFileInside(artifact, rel)).toArray().then((b) => Buffer.concat(b).toString());
    await expect(text('ci/task.yml')).resolves.toBe('platform: linux');
    await expect(text('ci/alias.yml')).resolves.toBe('platform: linux');
    await expect(text('ci/escape.yml')).rejects.toThrow(PathEscapeError);
    await expect(text('ci/out/secret')).rejects.toThrow(PathEscapeError);
    await expect(text('ci/missing.yml')).rejects.toThrow(/ENOENT/);
    // A FIFO a step made would block the open and the read forever.
    execFileSync('mkfifo', [path.join(artifact, 'ci', 'fifo')]);
    await expect(text('ci/fifo')).rejects.toThrow('ci/fifo is not a regular file');
    await expect(text('ci')).rejects.toThrow('ci is not a regular file');
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
});

describe('releaseBuildUser checks the build id itself, as the build input does', () => {
  test.each(['..', '.', '../../etc', 'a/../../..', '/etc', 'x/y', 'nul\0byte', 'b'.repeat(256)])('%j is refused', async (id) => {
    await expect(releaseBuildUser(home, id)).rejects.toThrow(PathEscapeError);
  });

  test('a lease read through a path-like id is never used', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-release-'));
    try {
      // `builds/../../victim` would have read a build uid from a file outside the leases and killed its processes.
      fs.writeFileSync(path.join(root, 'victim'), '1879048193');
      await expect(releaseBuildUser(root, '../../victim')).rejects.toThrow('build id "../../victim": `../../victim` contains `/`');
      expect(fs.readFileSync(path.join(root, 'victim'), 'utf8')).toBe('1879048193');
      await expect(releaseBuildUser(root, 'a-build')).resolves.toBeUndefined();
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

test('a one-off build named like a job does not share its cache', () => {
  expect(paths.cache(home, 'unit', 'plan.0')).toBe(path.join(home, 'caches', 'plans', 'unit', 'plan.0'));
  expect(paths.cache(home, 'unit', 'plan.0', 'ci')).toBe(path.join(home, 'caches', 'jobs', 'ci', 'unit', 'plan.0'));
});
