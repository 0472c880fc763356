// Abort = cancelling the build workflow: the running steps are signalled, on_abort and ensure
// hooks run, the build ends aborted. Steps on the in-memory fake runtime (workflow semantics
// only; that the local runtime's processes go, SIGTERM then SIGKILL: local-processes.test.ts).
import { randomUUID } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import type { BuildSummary } from '../../schemas/build';
import { sh, startHarness, waitFor, type Harness } from './harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ runtime: 'fake', killGraceMs: 2000 });
});
afterAll(async () => {
  await h.stop();
});

/** A script that says it started (in a shared file the test waits for), then sleeps until aborted; `started` tells. */
function sleeper(): { script: (suffix?: string) => string; started: (suffix?: string) => boolean } {
  const file = `/abort-${randomUUID()}`;
  return {
    script: (suffix = '') => `echo started >> ${file}${suffix}; sleep 1000`,
    started: (suffix = '') => h.fake!.host.has(`${file}${suffix}`),
  };
}

async function steps(handle: WorkflowHandle) {
  return (await handle.query<BuildSummary>('status')).steps;
}

async function searchStatus(handle: WorkflowHandle): Promise<unknown> {
  const d = await handle.describe();
  return (d.searchAttributes as Record<string, unknown[]>).CausewayStatus?.[0];
}

describe('abort', () => {
  test('cancelling a running build stops the step, runs on_abort and ensure, ends aborted', async () => {
    const s = sleeper();
    const step = {
      ...JSON.parse(sh('long', s.script())),
      on_abort: JSON.parse(sh('cleanup', 'echo on_abort ran')),
      on_error: JSON.parse(sh('err', 'echo on_error ran')),
      ensure: JSON.parse(sh('ens', 'echo ensure ran')),
    };
    const handle = await h.start(
      `plan:\n- ${JSON.stringify(step)}\n- ${sh('never', 'echo never')}\nensure: ${sh('jobens', 'echo job ensure ran')}`,
    );
    await waitFor('the step', () => s.started());
    const running = await steps(handle);
    expect(running.find((x) => x.id === 'plan.0')).toMatchObject({ state: 'running', attempts: 1 });
    expect(await searchStatus(handle)).toBe('started');

    await handle.cancel();
    const r = await h.finish(handle);
    expect(r.status).toBe('aborted');
    expect(r.logs.get('plan.0.on_abort')).toContain('on_abort ran');
    expect(r.logs.get('plan.0.ensure')).toContain('ensure ran');
    expect(r.logs.get('plan.on_ensure')).toBeUndefined();
    expect(r.logs.get('plan.ensure')).toContain('job ensure ran');
    expect(r.logs.get('plan.0.on_error')).toBeUndefined();
    expect(r.logs.get('plan.1')).toBeUndefined();

    const after = await steps(handle);
    expect(after.find((x) => x.id === 'plan.0')?.state).toBe('aborted');
    expect(after.find((x) => x.id === 'plan.0.on_abort')?.state).toBe('succeeded');
    expect(after.find((x) => x.id === 'plan.1')?.state).toBe('skipped');
    expect(await searchStatus(handle)).toBe('aborted');
    expect((await handle.describe()).status.name).toBe('CANCELLED');
  });

  test('aborting in_parallel stops every running branch and across iteration; attempts do not retry an abort', async () => {
    const [a, b, c] = [sleeper(), sleeper(), sleeper()];
    const plan = `plan:
- in_parallel:
  - ${sh('a', a.script(), { attempts: 3 })}
  - ${sh('b', b.script())}
  - ${JSON.stringify({ ...JSON.parse(sh('c', c.script('((.:i))'))), across: [{ var: 'i', values: [1, 2], max_in_flight: 'all' }] })}
`;
    const handle = await h.start(plan);
    await waitFor('every branch', () => a.started() && b.started() && c.started('1') && c.started('2'));
    await handle.cancel();
    const r = await h.finish(handle);
    expect(r.status).toBe('aborted');
    const after = await steps(handle);
    expect(after.find((x) => x.id === 'plan.0.in_parallel.0')).toMatchObject({ state: 'aborted', attempts: 1 });
    expect(await searchStatus(handle)).toBe('aborted');
  });

  test('an ensure hook that starts after the abort runs to completion, however long it takes', async () => {
    const s = sleeper();
    const step = { ...JSON.parse(sh('t', s.script())), ensure: JSON.parse(sh('e', 'sleep 2; echo ensure finished')) };
    const handle = await h.start(`plan:\n- ${JSON.stringify(step)}`);
    await waitFor('the step', () => s.started());
    await handle.cancel();
    const r = await h.finish(handle);
    expect(r.status).toBe('aborted');
    expect(r.logs.get('plan.0.ensure')).toContain('ensure finished');
  });

  test('abort while an on_failure hook runs: the hook is interrupted, ensure still runs', async () => {
    const s = sleeper();
    const step = {
      ...JSON.parse(sh('bad', 'exit 1')),
      on_failure: JSON.parse(sh('slow-hook', s.script())),
      ensure: JSON.parse(sh('e', 'echo ensure ran')),
    };
    const handle = await h.start(`plan:\n- ${JSON.stringify(step)}`);
    await waitFor('the hook', () => s.started());
    await handle.cancel();
    const r = await h.finish(handle);
    expect(r.status).toBe('aborted');
    expect(r.logs.get('plan.0.ensure')).toContain('ensure ran');
  });

  test('abort stops in_parallel with a limit and across from starting more steps; their hooks do not run', async () => {
    const s = sleeper();
    const withEnsure = (name: string, script: string) =>
      JSON.stringify({ ...JSON.parse(sh(name, script)), ensure: JSON.parse(sh(`${name}-e`, `echo ensure-${name}`)) });
    const plan = `plan:
- in_parallel:
    limit: 1
    steps: [${withEnsure('first', s.script())}, ${withEnsure('second', 'echo second')}, ${withEnsure('third', 'echo third')}]
`;
    const handle = await h.start(plan);
    await waitFor('the first step', () => s.started());
    await handle.cancel();
    const r = await h.finish(handle);
    expect(r.status).toBe('aborted');
    expect(r.logs.get('plan.0.in_parallel.0.ensure')).toContain('ensure-first');
    expect(r.logs.get('plan.0.in_parallel.1')).toBeUndefined();
    expect(r.logs.get('plan.0.in_parallel.1.ensure')).toBeUndefined();
    expect(r.logs.get('plan.0.in_parallel.2.ensure')).toBeUndefined();
    const after = await steps(handle);
    expect(after.find((x) => x.id === 'plan.0.in_parallel.1')?.state).toBe('skipped');

    const s2 = sleeper();
    const acrossPlan = `plan:\n- ${JSON.stringify({ ...JSON.parse(withEnsure('it', s2.script('((.:v))'))), across: [{ var: 'v', values: [1, 2, 3] }] })}`;
    const h2 = await h.start(acrossPlan);
    await waitFor('the first iteration', () => s2.started('1'));
    await h2.cancel();
    const r2 = await h.finish(h2);
    expect(r2.status).toBe('aborted');
    expect(r2.logs.get('plan.0.across.1')).toBeUndefined();
    expect(r2.logs.get('plan.0.ensure')).toContain('ensure-it');
  });
});
