// timeout, attempts, try and do against the real servers.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { killMatching, pidsMatching, sh, startHarness, type BuildRun, type Harness } from './harness';

let h: Harness;
let tmp: string;
const markers: string[] = [];
beforeAll(async () => {
  h = await startHarness();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-modifiers-'));
});
afterAll(async () => {
  for (const m of markers) killMatching(m);
  fs.rmSync(tmp, { recursive: true, force: true });
  await h.stop();
});

const stepOf = (r: BuildRun, id: string) => r.summary?.steps.find((s) => s.id === id);
const stamp = (name: string) => path.join(tmp, `${name}-${Math.floor(Math.random() * 1e9)}`);
function sleeper(): string {
  const m = `30.${Math.floor(Math.random() * 1e9)}`;
  markers.push(`sleep ${m}`);
  return m;
}
/** A script that counts its runs in `file` (outside the step dir) and prints the count and its pid. */
const counting = (file: string, rest: string) =>
  `n=$(expr $(cat ${file} 2>/dev/null || echo 0) + 1); echo $n > ${file}; echo "attempt $n pid $$"; ${rest}`;

describe('timeout', () => {
  test('ends the step and the build failed, as Concourse does, and kills the process', async () => {
    const s = sleeper();
    const r = await h.run(`plan:\n- ${sh('slow', `sleep ${s}`, { timeout: '1s' })}\n- ${sh('after', 'echo after')}`);
    expect(r.status).toBe('failed');
    expect(r.message).toContain('timeout exceeded (1s)');
    expect(pidsMatching(`sleep ${s}`)).toEqual([]);
    expect(stepOf(r, 'plan.0')).toMatchObject({ state: 'failed', message: 'timeout exceeded (1s)' });
    expect(r.logs.get('plan.1')).toBeUndefined();
  });

  test('a step finishing within its timeout succeeds', async () => {
    const r = await h.run(`plan:\n- ${sh('quick', 'echo done', { timeout: '1m' })}`);
    expect(r.status).toBe('succeeded');
  });

  test('timeout on a do interrupts whichever child is running', async () => {
    const s = sleeper();
    const r = await h.run(`plan:\n- {timeout: 2s, do: [${sh('a', 'echo a')}, ${sh('b', `sleep ${s}`)}, ${sh('c', 'echo c')}]}`);
    expect(r.status).toBe('failed');
    expect(stepOf(r, 'plan.0.do.1')?.state).toBe('errored');
    expect(r.logs.get('plan.0.do.0')).toContain('a');
    expect(r.logs.get('plan.0.do.2')).toBeUndefined();
    expect(pidsMatching(`sleep ${s}`)).toEqual([]);
  });

  test('try masks a timed-out step (the process is still killed)', async () => {
    const s = sleeper();
    const r = await h.run(`plan:\n- {try: ${sh('slow', `sleep ${s}`, { timeout: '1s' })}}\n- ${sh('after', 'echo after')}`);
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.1')).toContain('after');
    expect(pidsMatching(`sleep ${s}`)).toEqual([]);
  });
});

test('timeout on an in_parallel with a limit: unstarted steps are skipped, their hooks do not run', async () => {
  const s = sleeper();
  const second = JSON.stringify({ ...JSON.parse(sh('second', 'echo second')), ensure: JSON.parse(sh('e', 'echo ensure-second')) });
  const r = await h.run(`plan:\n- {timeout: 1s, in_parallel: {limit: 1, steps: [${sh('first', `sleep ${s}`)}, ${second}]}}`);
  expect(r.status).toBe('failed');
  expect(r.logs.get('plan.0.in_parallel.1.ensure')).toBeUndefined();
  expect(stepOf(r, 'plan.0.in_parallel.1')?.state).toBe('skipped');
  expect(pidsMatching(`sleep ${s}`)).toEqual([]);
});

describe('attempts', () => {
  test('retries a failing task in a fresh process and directory until it passes', async () => {
    const f = stamp('count');
    const script = counting(f, 'test -e leftover && echo SAW-LEFTOVER; touch leftover; [ $n -ge 3 ]');
    const r = await h.run(`plan:\n- ${sh('flaky', script, { attempts: 5 })}`);
    expect(r.status).toBe('succeeded');
    expect(fs.readFileSync(f, 'utf8').trim()).toBe('3');
    const log = r.logs.get('plan.0') ?? '';
    const pids = [...log.matchAll(/attempt \d+ pid (\d+)/g)].map((m) => m[1]);
    expect(pids).toHaveLength(3);
    expect(new Set(pids).size).toBe(3);
    expect(log).not.toContain('SAW-LEFTOVER');
    expect(stepOf(r, 'plan.0')).toMatchObject({ state: 'succeeded', attempts: 3, exitCode: 0 });
  });

  test('the outputs of the passing attempt are what later steps see', async () => {
    const f = stamp('count');
    const producer = sh(
      'p',
      counting(f, 'echo "from attempt $n" > out/file; [ $n -ge 2 ]'),
      { attempts: 3 },
      { outputs: [{ name: 'out' }] },
    );
    const r = await h.run(`plan:\n- ${producer}\n- ${sh('c', 'cat out/file', {}, { inputs: [{ name: 'out' }] })}`);
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.1')).toBe('from attempt 2\n');
  });

  test('the last attempt’s failure stands', async () => {
    const f = stamp('count');
    const r = await h.run(`plan:\n- ${sh('bad', counting(f, 'exit 7'), { attempts: 2 })}`);
    expect(r.status).toBe('failed');
    expect(fs.readFileSync(f, 'utf8').trim()).toBe('2');
    expect(stepOf(r, 'plan.0')).toMatchObject({ state: 'failed', attempts: 2, exitCode: 7 });
  });

  test('retries a timed-out (failed) attempt: timeout applies per attempt', async () => {
    const f = stamp('count');
    const s = sleeper();
    const script = counting(f, `if [ $n -eq 1 ]; then sleep ${s}; fi; echo finished`);
    const r = await h.run(`plan:\n- ${sh('slow-then-fast', script, { attempts: 3, timeout: '2s' })}`);
    expect(r.status).toBe('succeeded');
    expect(fs.readFileSync(f, 'utf8').trim()).toBe('2');
    expect(pidsMatching(`sleep ${s}`)).toEqual([]);
    expect(stepOf(r, 'plan.0')).toMatchObject({ state: 'succeeded', attempts: 2 });
  });

  test('every attempt timing out ends failed', async () => {
    const s = sleeper();
    const r = await h.run(`plan:\n- ${sh('always-slow', `sleep ${s}`, { attempts: 2, timeout: '1s' })}`);
    expect(r.status).toBe('failed');
    expect(stepOf(r, 'plan.0')).toMatchObject({ state: 'failed', attempts: 2 });
    expect(pidsMatching(`sleep ${s}`)).toEqual([]);
  });

  test('attempts on a do reruns the whole do', async () => {
    const f = stamp('count');
    const r = await h.run(`plan:\n- {attempts: 3, do: [${sh('first', 'echo first')}, ${sh('second', counting(f, '[ $n -ge 2 ]'))}]}`);
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
    const f = stamp('order');
    const r = await h.run(
      `plan:\n- {do: [${sh('a', `echo a >> ${f}`)}, ${sh('b', `echo b >> ${f}; exit 1`)}, ${sh('c', `echo c >> ${f}`)}]}`,
    );
    expect(r.status).toBe('failed');
    expect(fs.readFileSync(f, 'utf8')).toBe('a\nb\n');
    expect(stepOf(r, 'plan.0.do.2')?.state).toBe('skipped');
    expect(r.message).toContain('b (exit 1)');
  });

  test('an error stops a do too: the steps after it are skipped, not left pending', async () => {
    const r = await h.run(`plan:\n- ${sh('err', 'true', {}, { inputs: [{ name: 'missing' }] })}\n- ${sh('after', 'echo after')}`);
    expect(r.status).toBe('errored');
    expect(stepOf(r, 'plan.0')?.state).toBe('errored');
    expect(stepOf(r, 'plan.1')?.state).toBe('skipped');
  });

  test('a background process a task leaves behind is stopped when the task ends', async () => {
    const s = sleeper();
    const r = await h.run(`plan:\n- ${sh('bg', `sleep ${s} & echo started`)}`);
    expect(r.status).toBe('succeeded');
    expect(pidsMatching(`sleep ${s}`)).toEqual([]);
  });
});
