// across: one var, several vars (cartesian product), max_in_flight (number, "all"), fail_fast,
// values from a load_var, against the real servers, steps on the in-memory fake runtime.
import { randomUUID } from 'node:crypto';
import { sh, startHarness, type BuildRun, type Harness } from './harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ runtime: 'fake' });
});
afterAll(async () => {
  await h.stop();
});

const stepOf = (r: BuildRun, id: string) => r.summary?.steps.find((s) => s.id === id);
/** a file the fake runtime's steps share (an absolute path), unique to one test */
const shared = () => `/across-${randomUUID()}`;
const acrossStep = (step: string, across: unknown[], extra: Record<string, unknown> = {}) =>
  JSON.stringify({ ...JSON.parse(step), across, ...extra });
function maxConcurrency(log: string): number {
  let now = 0;
  let max = 0;
  for (const line of (h.fake!.host.get(log) ?? '').split('\n').filter(Boolean)) {
    now += line.startsWith('+') ? 1 : -1;
    max = Math.max(max, now);
  }
  return max;
}

describe('across', () => {
  test('one var: one iteration per value, ((.:var)) set in each', async () => {
    const r = await h.run(`plan:\n- ${acrossStep(sh('each', 'echo "v=((.:v))"'), [{ var: 'v', values: ['a', 'b', 'c'] }])}`);
    expect(r.status).toBe('succeeded');
    expect([0, 1, 2].map((i) => r.logs.get(`plan.0.across.${i}`))).toEqual(['v=a\n', 'v=b\n', 'v=c\n']);
    expect(stepOf(r, 'plan.0')?.state).toBe('succeeded');
    expect(stepOf(r, 'plan.0.across.2')).toMatchObject({ state: 'succeeded', parent: 'plan.0' });
  });

  test('values may be maps; their fields are reachable', async () => {
    const values = [
      { name: 'x', n: 1 },
      { name: 'y', n: 2 },
    ];
    const r = await h.run(`plan:\n- ${acrossStep(sh('each', 'echo "((.:v.name))=((.:v.n))"'), [{ var: 'v', values }])}`);
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.0.across.0')).toBe('x=1\n');
    expect(r.logs.get('plan.0.across.1')).toBe('y=2\n');
  });

  test('several vars: the cartesian product', async () => {
    const r = await h.run(
      `plan:\n- ${acrossStep(sh('each', 'echo "((.:os))-((.:n))"'), [
        { var: 'os', values: ['linux', 'mac'] },
        { var: 'n', values: [1, 2, 3] },
      ])}`,
    );
    expect(r.status).toBe('succeeded');
    const got = [...r.logs.entries()].filter(([id]) => id.startsWith('plan.0.across.')).map(([, v]) => v.trim());
    expect(got.sort()).toEqual(['linux-1', 'linux-2', 'linux-3', 'mac-1', 'mac-2', 'mac-3']);
    expect(r.logs.get('plan.0.across.1.2')).toBe('mac-3\n');
  });

  test('max_in_flight defaults to 1; a number caps concurrency; "all" runs every iteration at once', async () => {
    const log1 = shared();
    const tracked = sh('t', `echo "+ ((.:v))" >> ${log1}; sleep 0.3; echo "- ((.:v))" >> ${log1}`);
    const r1 = await h.run(`plan:\n- ${acrossStep(tracked, [{ var: 'v', values: [1, 2, 3] }])}`);
    expect(r1.status).toBe('succeeded');
    expect(maxConcurrency(log1)).toBe(1);

    const log2 = shared();
    const tracked2 = sh('t', `echo "+ ((.:v))" >> ${log2}; sleep 0.5; echo "- ((.:v))" >> ${log2}`);
    const r2 = await h.run(`plan:\n- ${acrossStep(tracked2, [{ var: 'v', values: [1, 2, 3, 4, 5], max_in_flight: 2 }])}`);
    expect(r2.status).toBe('succeeded');
    expect(maxConcurrency(log2)).toBeLessThanOrEqual(2);

    // Each iteration stays long enough for every other to have started (a generous bound, not a timing goal).
    const log3 = shared();
    const tracked3 = sh('t', `echo "+ ((.:v))" >> ${log3}; sleep 5; echo "- ((.:v))" >> ${log3}`);
    const r3 = await h.run(`plan:\n- ${acrossStep(tracked3, [{ var: 'v', values: [1, 2, 3, 4], max_in_flight: 'all' }])}`);
    expect(r3.status).toBe('succeeded');
    expect(maxConcurrency(log3)).toBe(4);
  });

  test('without fail_fast every iteration runs and the step fails', async () => {
    const r = await h.run(`plan:\n- ${acrossStep(sh('each', 'echo ran-((.:v)); [ ((.:v)) != 2 ]'), [{ var: 'v', values: [1, 2, 3] }])}`);
    expect(r.status).toBe('failed');
    expect(r.logs.get('plan.0.across.2')).toContain('ran-3');
    expect(stepOf(r, 'plan.0')?.state).toBe('failed');
    expect(stepOf(r, 'plan.0.across.1')?.state).toBe('failed');
  });

  test('fail_fast interrupts running iterations and skips the rest; the build fails', async () => {
    const step = sh('each', `[ ((.:v)) = 1 ] && sleep 0.5 && exit 1; sleep 1000`);
    const r = await h.run(`plan:\n- ${acrossStep(step, [{ var: 'v', values: [1, 2, 3, 4], max_in_flight: 2 }], { fail_fast: true })}`);
    expect(r.status).toBe('failed');
    expect(stepOf(r, 'plan.0.across.1')?.state).toMatch(/aborted|errored/);
    expect(r.logs.get('plan.0.across.3')).toBeUndefined();
    expect(stepOf(r, 'plan.0.across.0')?.state).toBe('failed');
    expect(stepOf(r, 'plan.0.across.3')?.state).toBe('skipped');
  });

  test('values from a load_var ((.:list))', async () => {
    const write = sh('write', `echo '["x", "y"]' > out/list.json`, {}, { outputs: [{ name: 'out' }] });
    const use = acrossStep(sh('use', 'echo item-((.:item))'), [{ var: 'item', values: '((.:list))' }]);
    const r = await h.run(`plan:\n- ${write}\n- {load_var: list, file: out/list.json}\n- ${use}`);
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.2.across.0')).toBe('item-x\n');
    expect(r.logs.get('plan.2.across.1')).toBe('item-y\n');
  });

  test('a load_var that is not a list errors the step', async () => {
    const write = sh('write', `echo 'just text' > out/list.txt`, {}, { outputs: [{ name: 'out' }] });
    const use = acrossStep(sh('use', 'echo ((.:item))'), [{ var: 'item', values: '((.:list))' }]);
    const r = await h.run(`plan:\n- ${write}\n- {load_var: list, file: out/list.txt}\n- ${use}`);
    expect(r.status).toBe('errored');
    expect(r.message).toMatch(/values must be a list/);
    expect(stepOf(r, 'plan.2')?.state).toBe('errored');
  });

  test('across over an in_parallel and a do: nested step ids per iteration', async () => {
    const r = await h.run(
      `plan:\n- {across: [{var: v, values: [p, q]}], do: [${sh('one', 'echo one-((.:v))')}, {in_parallel: [${sh('two', 'echo two-((.:v))')}]}]}`,
    );
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.0.across.1.do.0')).toBe('one-q\n');
    expect(r.logs.get('plan.0.across.0.do.1.in_parallel.0')).toBe('two-p\n');
  });

  test('an empty list runs nothing and succeeds', async () => {
    const r = await h.run(`plan:\n- ${acrossStep(sh('each', 'echo ((.:v))'), [{ var: 'v', values: [] }])}\n- ${sh('after', 'echo after')}`);
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.1')).toBe('after\n');
    expect([...r.logs.keys()].filter((k) => k.includes('across'))).toEqual([]);
  });

  test('across nested in an across iteration sees both vars', async () => {
    const inner = acrossStep(sh('inner', 'echo ((.:outer))-((.:inner))'), [{ var: 'inner', values: [1, 2] }]);
    const r = await h.run(`plan:\n- {across: [{var: outer, values: [a, b]}], do: [${inner}]}`);
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.0.across.1.do.0.across.0')).toBe('b-1\n');
    expect(r.logs.get('plan.0.across.0.do.0.across.1')).toBe('a-2\n');
  });

  test('an iteration’s outputs are its own: iterations do not see each other’s artifacts', async () => {
    const step = sh('each', 'test -e out/file && echo saw-other; echo ((.:v)) > out/file', {}, { outputs: [{ name: 'out' }] });
    const r = await h.run(`plan:\n- ${acrossStep(step, [{ var: 'v', values: [1, 2] }])}`);
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.0.across.1') ?? '').not.toContain('saw-other');
  });

  test('across vars are interpolated in input_mapping/output_mapping keys and in step names, as Concourse does', async () => {
    const make = sh('make', 'echo hello > shared/f', {}, { outputs: [{ name: 'shared' }] });
    const read = sh(
      'read-((.:v))',
      'cat in-((.:v))/f; echo ((.:v)) > out-((.:v))/g',
      { input_mapping: { 'in-((.:v))': 'shared' }, output_mapping: { 'out-((.:v))': 'res-((.:v))' } },
      { inputs: [{ name: 'in-((.:v))' }], outputs: [{ name: 'out-((.:v))' }] },
    );
    const r = await h.run(`plan:\n- ${make}\n- ${acrossStep(read, [{ var: 'v', values: ['a', 'b'] }])}`);
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.1.across.0')).toBe('hello\n');
    expect(stepOf(r, 'plan.1.across.0')?.name).toBe('read-a');
    expect(stepOf(r, 'plan.1.across.1')?.name).toBe('read-b');
  });
});
