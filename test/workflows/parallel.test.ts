// in_parallel (list form and {steps, limit, fail_fast}) against the real servers.
// Concurrency is proven with barriers (each branch waits for the others' files), never with timing.
import fs from 'node:fs';
import path from 'node:path';
import { killMatching, pidsMatching, sh, startHarness, type BuildRun, type Harness } from './harness';
import { stepWritableDir } from '../setup/step-dir';

let h: Harness;
let tmp: string;
const markers: string[] = [];
beforeAll(async () => {
  h = await startHarness();
  tmp = stepWritableDir('cw-parallel-');
});
afterAll(async () => {
  for (const m of markers) killMatching(m);
  fs.rmSync(tmp, { recursive: true, force: true });
  await h.stop();
});

const stepOf = (r: BuildRun, id: string) => r.summary?.steps.find((s) => s.id === id);
const dir = () => stepWritableDir('d-', tmp);
function sleeper(): string {
  const m = `30.${Math.floor(Math.random() * 1e9)}`;
  markers.push(`sleep ${m}`);
  return m;
}
/** Arrives at a barrier of `n` in `d` and waits for everyone: only passes when n branches run at once. */
const barrier = (d: string, me: string, n: number) =>
  `touch ${d}/${me}; while [ $(ls ${d} | wc -l) -lt ${n} ]; do sleep 0.05; done; echo through`;
/** Records start/end of a branch in a shared log; the log's interleaving gives the highest concurrency. */
const tracked = (log: string, me: string) => `echo "+ ${me}" >> ${log}; sleep 0.3; echo "- ${me}" >> ${log}`;
function maxConcurrency(log: string): number {
  let now = 0;
  let max = 0;
  for (const line of fs.readFileSync(log, 'utf8').split('\n').filter(Boolean)) {
    now += line.startsWith('+') ? 1 : -1;
    max = Math.max(max, now);
  }
  return max;
}

describe('in_parallel', () => {
  test('list form runs every step at once and succeeds when all do', async () => {
    const d = dir();
    const steps = ['a', 'b', 'c'].map((n) => sh(n, barrier(d, n, 3)));
    const r = await h.run(`plan:\n- {timeout: 30s, in_parallel: [${steps.join(', ')}]}`);
    expect(r.status).toBe('succeeded');
    for (const i of [0, 1, 2]) expect(r.logs.get(`plan.0.in_parallel.${i}`)).toContain('through');
  });

  test('limit caps how many run at once', async () => {
    const log = path.join(dir(), 'log');
    const steps = ['a', 'b', 'c', 'd'].map((n) => sh(n, tracked(log, n)));
    const r = await h.run(`plan:\n- in_parallel: {limit: 1, steps: [${steps.join(', ')}]}`);
    expect(r.status).toBe('succeeded');
    expect(maxConcurrency(log)).toBe(1);
    const d = dir();
    const two = ['a', 'b', 'c', 'd'].map((n, i) => sh(n, i < 2 ? barrier(d, n, 2) : 'true'));
    const r2 = await h.run(`plan:\n- {timeout: 30s, in_parallel: {limit: 2, steps: [${two.join(', ')}]}}`);
    expect(r2.status).toBe('succeeded');
  });

  test('without fail_fast a failure lets the other branches finish; the build fails', async () => {
    const f = path.join(dir(), 'done');
    const r = await h.run(
      `plan:\n- in_parallel: [${sh('bad', 'exit 1')}, ${sh('slowish', `sleep 1; touch ${f}`)}]\n- ${sh('after', 'echo after')}`,
    );
    expect(r.status).toBe('failed');
    expect(fs.existsSync(f)).toBe(true);
    expect(stepOf(r, 'plan.0.in_parallel.1')?.state).toBe('succeeded');
    expect(stepOf(r, 'plan.1')?.state).toBe('skipped');
  });

  test('fail_fast interrupts the running branches and skips the unstarted ones; the build fails, not errors', async () => {
    const s = sleeper();
    const steps = [sh('bad', 'sleep 0.5; exit 1'), sh('long', `sleep ${s}`), sh('never', 'echo never'), sh('never2', 'echo never')];
    const r = await h.run(`plan:\n- in_parallel: {limit: 2, fail_fast: true, steps: [${steps.join(', ')}]}`);
    expect(r.status).toBe('failed');
    expect(pidsMatching(`sleep ${s}`)).toEqual([]);
    expect(r.logs.get('plan.0.in_parallel.2')).toBeUndefined();
    expect(stepOf(r, 'plan.0.in_parallel.0')?.state).toBe('failed');
    expect(stepOf(r, 'plan.0.in_parallel.2')?.state).toBe('skipped');
    expect(stepOf(r, 'plan.0.in_parallel.3')?.state).toBe('skipped');
  });

  test('an errored branch (missing input) does not stop the others without fail_fast; the build errors', async () => {
    const f = path.join(dir(), 'done');
    const r = await h.run(
      `plan:\n- in_parallel: [${sh('err', 'true', {}, { inputs: [{ name: 'missing' }] })}, ${sh('ok', `sleep 1; touch ${f}`)}]`,
    );
    expect(r.status).toBe('errored');
    expect(fs.existsSync(f)).toBe(true);
  });

  test('outputs of every branch are visible to later steps', async () => {
    const out = (n: string) => sh(n, `echo ${n} > ${n}/file`, {}, { outputs: [{ name: n }] });
    const consumer = sh('read', 'cat a/file b/file', {}, { inputs: [{ name: 'a' }, { name: 'b' }] });
    const r = await h.run(`plan:\n- in_parallel: [${out('a')}, ${out('b')}]\n- ${consumer}`);
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.1')).toBe('a\nb\n');
  });

  test('a try inside fail_fast masks the failure: nothing is interrupted', async () => {
    const f = path.join(dir(), 'done');
    const r = await h.run(
      `plan:\n- in_parallel: {fail_fast: true, steps: [{try: ${sh('bad', 'exit 1')}}, ${sh('ok', `sleep 1; touch ${f}`)}]}`,
    );
    expect(r.status).toBe('succeeded');
    expect(fs.existsSync(f)).toBe(true);
  });
});
