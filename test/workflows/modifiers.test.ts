// timeout, attempts, try and do as Concourse defines them, against the real Temporal dev server
// and NATS, steps on the in-memory fake runtime (workflow semantics only; what the local
// runtime does with a step's processes under them: local-processes.test.ts).
import { randomUUID } from 'node:crypto';
import { sh, startHarness, type BuildRun, type Harness } from './harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ runtime: 'fake' });
});
afterAll(async () => {
  await h.stop();
});

/** long enough never to end by itself: only a timeout ends it */
const SLEEP = 1000;
const stepOf = (r: BuildRun, id: string) => r.summary?.steps.find((s) => s.id === id);
/** a file the fake runtime's steps share (an absolute path), unique to one test */
const shared = () => `/modifiers-${randomUUID()}`;
/** A script that fails until its `n`th run (runs counted by marker files `dir.1`..), then runs `rest`. */
function failsUntil(dir: string, n: number, rest = 'true'): string {
  const marks = Array.from({ length: n - 1 }, (_, i) => `${dir}.${i + 1}`);
  const seen = marks.map((m) => `test -e ${m}`).join(' && ');
  // each failing run adds the first missing mark: the last one first, guarded by the one before
  const add = marks.map((m, i) => (i === 0 ? `touch ${m}` : `${marks[i - 1] ? `test -e ${marks[i - 1]} && ` : ''}touch ${m}`)).reverse();
  return `${seen} && ${rest} && exit 0; ${add.join('; ')}; exit 1`;
}

describe('timeout', () => {
  test('ends the step and the build failed, as Concourse does', async () => {
    const r = await h.run(`plan:\n- ${sh('slow', `sleep ${SLEEP}`, { timeout: '1s' })}\n- ${sh('after', 'echo after')}`);
    expect(r.status).toBe('failed');
    expect(r.message).toContain('timeout exceeded (1s)');
    expect(stepOf(r, 'plan.0')).toMatchObject({ state: 'failed', message: 'timeout exceeded (1s)' });
    expect(r.logs.get('plan.1')).toBeUndefined();
  });

  test('a step finishing within its timeout succeeds', async () => {
    const r = await h.run(`plan:\n- ${sh('quick', 'echo done', { timeout: '1m' })}`);
    expect(r.status).toBe('succeeded');
  });

  test('timeout on a do interrupts whichever child is running', async () => {
    const r = await h.run(`plan:\n- {timeout: 2s, do: [${sh('a', 'echo a')}, ${sh('b', `sleep ${SLEEP}`)}, ${sh('c', 'echo c')}]}`);
    expect(r.status).toBe('failed');
    expect(stepOf(r, 'plan.0.do.1')?.state).toBe('errored');
    expect(r.logs.get('plan.0.do.0')).toContain('a');
    expect(r.logs.get('plan.0.do.2')).toBeUndefined();
  });

  test('try masks a timed-out step', async () => {
    const r = await h.run(`plan:\n- {try: ${sh('slow', `sleep ${SLEEP}`, { timeout: '1s' })}}\n- ${sh('after', 'echo after')}`);
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.1')).toContain('after');
  });

  test('timeout on an in_parallel with a limit: unstarted steps are skipped, their hooks do not run', async () => {
    const second = JSON.stringify({ ...JSON.parse(sh('second', 'echo second')), ensure: JSON.parse(sh('e', 'echo ensure-second')) });
    const r = await h.run(`plan:\n- {timeout: 1s, in_parallel: {limit: 1, steps: [${sh('first', `sleep ${SLEEP}`)}, ${second}]}}`);
    expect(r.status).toBe('failed');
    expect(r.logs.get('plan.0.in_parallel.1.ensure')).toBeUndefined();
    expect(stepOf(r, 'plan.0.in_parallel.1')?.state).toBe('skipped');
  });
});

describe('attempts', () => {
  test('retries a failing task in a fresh directory until it passes', async () => {
    const script = `test -e leftover && echo SAW-LEFTOVER; touch leftover; ${failsUntil(shared(), 3, 'echo passed')}`;
    const r = await h.run(`plan:\n- ${sh('flaky', script, { attempts: 5 })}`);
    expect(r.status).toBe('succeeded');
    const log = r.logs.get('plan.0') ?? '';
    expect(log).toContain('passed');
    expect(log).not.toContain('SAW-LEFTOVER');
    expect(stepOf(r, 'plan.0')).toMatchObject({ state: 'succeeded', attempts: 3, exitCode: 0 });
  });

  test('the outputs of the passing attempt are what later steps see', async () => {
    const f = shared();
    const script = `test -e ${f} && echo "from attempt 2" > out/file && exit 0; touch ${f}; echo "from attempt 1" > out/file; exit 1`;
    const producer = sh('p', script, { attempts: 3 }, { outputs: [{ name: 'out' }] });
    const r = await h.run(`plan:\n- ${producer}\n- ${sh('c', 'cat out/file', {}, { inputs: [{ name: 'out' }] })}`);
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.1')).toBe('from attempt 2\n');
  });

  test('the last attempt’s failure stands', async () => {
    const f = shared();
    const r = await h.run(`plan:\n- ${sh('bad', `echo run >> ${f}; exit 7`, { attempts: 2 })}`);
    expect(r.status).toBe('failed');
    expect(h.fake!.host.get(f)).toBe('run\nrun\n');
    expect(stepOf(r, 'plan.0')).toMatchObject({ state: 'failed', attempts: 2, exitCode: 7 });
  });

  test('retries a timed-out (failed) attempt: timeout applies per attempt', async () => {
    const f = shared();
    const script = `test -e ${f} && echo finished && exit 0; touch ${f}; sleep ${SLEEP}`;
    const r = await h.run(`plan:\n- ${sh('slow-then-fast', script, { attempts: 3, timeout: '2s' })}`);
    expect(r.status).toBe('succeeded');
    expect(stepOf(r, 'plan.0')).toMatchObject({ state: 'succeeded', attempts: 2 });
  });

  test('every attempt timing out ends failed', async () => {
    const r = await h.run(`plan:\n- ${sh('always-slow', `sleep ${SLEEP}`, { attempts: 2, timeout: '1s' })}`);
    expect(r.status).toBe('failed');
    expect(stepOf(r, 'plan.0')).toMatchObject({ state: 'failed', attempts: 2 });
  });

  test('attempts on a do reruns the whole do', async () => {
    const r = await h.run(`plan:\n- {attempts: 3, do: [${sh('first', 'echo first')}, ${sh('second', failsUntil(shared(), 2))}]}`);
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.0.do.0')?.match(/first/g)).toHaveLength(2);
    expect(stepOf(r, 'plan.0')).toMatchObject({ attempts: 2 });
  });

  test('on_failure hooks run once, after the last attempt', async () => {
    const r = await h.run(`plan:\n- ${sh('bad', 'exit 1', { attempts: 3, on_failure: JSON.parse(sh('hook', 'echo hook')) })}`);
    expect(r.status).toBe('failed');
    expect(r.logs.get('plan.0.on_failure')).toBe('hook\n');
  });
});

describe('try and do', () => {
  test('try masks a failure and an error; the next step runs', async () => {
    const r = await h.run(
      `plan:\n- {try: ${sh('bad', 'exit 1')}}\n- {try: ${sh('err', 'true', {}, { inputs: [{ name: 'missing' }] })}}\n- ${sh('after', 'echo after')}`,
    );
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.2')).toContain('after');
    expect(stepOf(r, 'plan.0')?.state).toBe('succeeded');
    expect(stepOf(r, 'plan.0.try')?.state).toBe('failed');
  });

  test('do runs in order and stops at the first failure, skipping the rest', async () => {
    const f = shared();
    const r = await h.run(
      `plan:\n- {do: [${sh('a', `echo a >> ${f}`)}, ${sh('b', `echo b >> ${f}; exit 1`)}, ${sh('c', `echo c >> ${f}`)}]}`,
    );
    expect(r.status).toBe('failed');
    expect(h.fake!.host.get(f)).toBe('a\nb\n');
    expect(stepOf(r, 'plan.0.do.2')?.state).toBe('skipped');
    expect(r.message).toContain('b (exit 1)');
  });

  test('an error stops a do too: the steps after it are skipped, not left pending', async () => {
    const r = await h.run(`plan:\n- ${sh('err', 'true', {}, { inputs: [{ name: 'missing' }] })}\n- ${sh('after', 'echo after')}`);
    expect(r.status).toBe('errored');
    expect(stepOf(r, 'plan.0')?.state).toBe('errored');
    expect(stepOf(r, 'plan.1')?.state).toBe('skipped');
  });
});
