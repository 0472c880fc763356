// No path the engine builds from a build's or a plan's names can leave CAUSEWAY_HOME: every
// place a name or path enters (build id, run id, step id, run key, input name, plan name,
// cache/input/output paths inside a step) is tried with hostile values, and the refusal is an
// error no retry repeats.
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { safeJoin } from '../../activities/artifacts';
import { paths } from '../../activities/deps';
import { asPermanent } from '../../activities/permanent';

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
