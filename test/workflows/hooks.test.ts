// Hooks as Concourse defines them: on_success / on_failure / on_error / on_abort / ensure,
// against the real Temporal dev server and NATS, steps on the in-memory fake runtime (workflow
// semantics only; abort.test.ts checks that the local runtime's processes go).
import { readBuild } from '../../common/build-log';
import { sh, startHarness, type BuildRun, type Harness } from './harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ runtime: 'fake' });
});
/** long enough never to end by itself: only an abort or a timeout ends it */
const SLEEP = 1000;
afterAll(async () => {
  await h.stop();
});

/** Causeway's own lines in a step's log (collectLogs leaves them out). */
async function causewayNotes(buildId: string, stepId: string): Promise<string> {
  let text = '';
  for await (const rec of readBuild(h.nc, buildId, { follow: false })) {
    if (rec.kind === 'log' && rec.stepId === stepId && rec.stream === 'causeway') text += Buffer.from(rec.data).toString('utf8');
  }
  return text;
}

const state = (r: BuildRun, id: string) => r.summary?.steps.find((s) => s.id === id)?.state;
const ran = (r: BuildRun, id: string) => !['pending', 'skipped', undefined].includes(state(r, id));

const hooks = {
  on_success: JSON.parse(sh('s', 'echo on_success')),
  on_failure: JSON.parse(sh('f', 'echo on_failure')),
  on_error: JSON.parse(sh('e', 'echo on_error')),
  on_abort: JSON.parse(sh('a', 'echo on_abort')),
  ensure: JSON.parse(sh('n', 'echo ensure')),
};
const withHooks = (step: string, extra: Record<string, unknown> = {}) => JSON.stringify({ ...JSON.parse(step), ...hooks, ...extra });

describe('hooks', () => {
  test('success: on_success and ensure run, on_failure/on_error/on_abort do not', async () => {
    const r = await h.run(`plan:\n- ${withHooks(sh('ok', 'true'))}`);
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.0.on_success')).toContain('on_success');
    expect(r.logs.get('plan.0.ensure')).toContain('ensure');
    for (const id of ['plan.0.on_failure', 'plan.0.on_error', 'plan.0.on_abort']) expect(ran(r, id)).toBe(false);
  });

  test('failure: on_failure and ensure run; the step stays failed', async () => {
    const r = await h.run(`plan:\n- ${withHooks(sh('bad', 'exit 4'))}\n- ${sh('after', 'echo after')}`);
    expect(r.status).toBe('failed');
    expect(r.logs.get('plan.0.on_failure')).toContain('on_failure');
    expect(r.logs.get('plan.0.ensure')).toContain('ensure');
    for (const id of ['plan.0.on_success', 'plan.0.on_error', 'plan.0.on_abort']) expect(ran(r, id)).toBe(false);
    expect(state(r, 'plan.0')).toBe('failed');
    expect(state(r, 'plan.1')).toBe('skipped');
  });

  test('error (missing input): on_error and ensure run, the build errors', async () => {
    const step = sh('needs', 'true', {}, { inputs: [{ name: 'nowhere' }] });
    const r = await h.run(`plan:\n- ${withHooks(step)}`);
    expect(r.status).toBe('errored');
    expect(r.message).toMatch(/missing input `nowhere`/);
    expect(r.logs.get('plan.0.on_error')).toContain('on_error');
    expect(r.logs.get('plan.0.ensure')).toContain('ensure');
    for (const id of ['plan.0.on_success', 'plan.0.on_failure', 'plan.0.on_abort']) expect(ran(r, id)).toBe(false);
  });

  // Concourse's TimeoutStep returns (false, nil) on DeadlineExceeded: the step failed.
  test('timeout on the step: on_failure and ensure run, on_error and on_abort do not, the build fails', async () => {
    const r = await h.run(`plan:\n- ${withHooks(sh('slow', `sleep ${SLEEP}`), { timeout: '1s' })}`);
    expect(r.status).toBe('failed');
    expect(r.message).toContain('slow: timeout exceeded (1s)');
    expect(r.logs.get('plan.0.on_failure')).toContain('on_failure');
    expect(r.logs.get('plan.0.ensure')).toContain('ensure');
    const notes = await causewayNotes(r.buildId, 'plan.0');
    expect(notes).toContain('timeout exceeded: sending SIGTERM');
    expect(notes).not.toContain('aborted');
    expect(ran(r, 'plan.0.on_abort')).toBe(false);
    expect(ran(r, 'plan.0.on_error')).toBe(false);
  });

  test('timeout of an enclosing step: the inner step gets on_error (not on_abort) and ensure', async () => {
    const inner = withHooks(sh('slow', `sleep ${SLEEP}`));
    const r = await h.run(`plan:\n- {do: [${inner}], timeout: 1s}`);
    expect(r.status).toBe('failed');
    expect(r.logs.get('plan.0.do.0.ensure')).toContain('ensure');
    expect(ran(r, 'plan.0.do.0.on_abort')).toBe(false);
    expect(r.logs.get('plan.0.do.0.on_error')).toContain('on_error');
    expect(state(r, 'plan.0.do.0')).toBe('errored');
    expect(state(r, 'plan.0')).toBe('failed');
  });

  test('a step interrupted by in_parallel fail_fast gets on_abort (as Concourse cancels it), not on_error', async () => {
    const sibling = withHooks(sh('long', `sleep ${SLEEP}`));
    const r = await h.run(`plan:\n- in_parallel: {fail_fast: true, steps: [${sh('bad', 'sleep 0.5; exit 1')}, ${sibling}]}`);
    expect(r.status).toBe('failed');
    expect(r.logs.get('plan.0.in_parallel.1.on_abort')).toContain('on_abort');
    expect(r.logs.get('plan.0.in_parallel.1.ensure')).toContain('ensure');
    expect(ran(r, 'plan.0.in_parallel.1.on_error')).toBe(false);
  });

  test('a failing on_success hook fails the step', async () => {
    const r = await h.run(`plan:\n- ${JSON.stringify({ ...JSON.parse(sh('ok', 'true')), on_success: JSON.parse(sh('hook', 'exit 2')) })}`);
    expect(r.status).toBe('failed');
  });

  test('a failing ensure fails an otherwise successful build; ensure still runs after on_failure', async () => {
    const r1 = await h.run(`plan:\n- ${JSON.stringify({ ...JSON.parse(sh('ok', 'true')), ensure: JSON.parse(sh('e', 'exit 1')) })}`);
    expect(r1.status).toBe('failed');
    const r2 = await h.run(
      `plan:\n- ${JSON.stringify({ ...JSON.parse(sh('bad', 'exit 1')), on_failure: JSON.parse(sh('f', 'exit 1')), ensure: JSON.parse(sh('e', 'echo ensured')) })}`,
    );
    expect(r2.status).toBe('failed');
    expect(r2.logs.get('plan.0.ensure')).toContain('ensured');
  });

  test('an on_failure hook sees the outputs of the failed task', async () => {
    const producer = sh('produce', 'echo partial > out/report.txt; exit 1', {}, { outputs: [{ name: 'out' }] });
    const hook = JSON.parse(sh('inspect', 'cat out/report.txt', {}, { inputs: [{ name: 'out' }] }));
    const r = await h.run(`plan:\n- ${JSON.stringify({ ...JSON.parse(producer), on_failure: hook })}`);
    expect(r.status).toBe('failed');
    expect(r.logs.get('plan.0.on_failure')).toContain('partial');
  });

  test('job-level hooks wrap the whole plan', async () => {
    const r = await h.run(
      `plan:\n- ${sh('bad', 'exit 1')}\non_failure: ${sh('f', 'echo job failed')}\nensure: ${sh('e', 'echo job ensure')}`,
    );
    expect(r.status).toBe('failed');
    expect(r.logs.get('plan.on_failure')).toContain('job failed');
    expect(r.logs.get('plan.ensure')).toContain('job ensure');
  });

  test('hooks of a step inside across see the iteration var; hooks of the across step run once', async () => {
    const step = {
      ...JSON.parse(sh('it', 'echo ((.:v))')),
      across: [{ var: 'v', values: ['a', 'b'] }],
      ensure: JSON.parse(sh('once', 'echo ensure-once')),
    };
    const r = await h.run(`plan:\n- ${JSON.stringify(step)}`);
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.0.across.0')).toContain('a');
    expect(r.logs.get('plan.0.across.1')).toContain('b');
    expect(r.logs.get('plan.0.ensure')).toBe('ensure-once\n');
  });
});
