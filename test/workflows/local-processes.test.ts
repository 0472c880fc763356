// What the local runtime does with a step's processes under timeout, attempts and abort (the
// semantics themselves: modifiers.test.ts and abort.test.ts on the fake runtime): a timed-out
// or aborted step's processes are killed (SIGTERM, SIGKILL after the grace period), each
// attempt is a fresh process, a process a task leaves behind is stopped.
import fs from 'node:fs';
import path from 'node:path';
import { killMatching, pidsMatching, sh, startHarness, waitFor, type BuildRun, type Harness } from './harness';
import { stepWritableDir } from '../setup/step-dir';

let h: Harness;
let tmp: string;
const markers: string[] = [];
beforeAll(async () => {
  h = await startHarness({ killGraceMs: 2000 });
  tmp = stepWritableDir('cw-processes-');
});
afterAll(async () => {
  for (const m of markers) killMatching(m);
  fs.rmSync(tmp, { recursive: true, force: true });
  await h.stop();
});

const stepOf = (r: BuildRun, id: string) => r.summary?.steps.find((s) => s.id === id);
function sleeper(): string {
  const m = `30.${Math.floor(Math.random() * 1e9)}`;
  markers.push(`sleep ${m}`);
  return m;
}

test('a timeout kills the step’s process, also inside a do and under try', async () => {
  const [a, b, c] = [sleeper(), sleeper(), sleeper()];
  const r = await h.run(`plan:
- {try: ${sh('slow', `sleep ${a}`, { timeout: '1s' })}}
- {try: {timeout: 1s, do: [${sh('b', `sleep ${b}`)}]}}
- ${sh('slow', `sleep ${c}`, { timeout: '1s' })}`);
  expect(r.status).toBe('failed');
  for (const s of [a, b, c]) expect(pidsMatching(`sleep ${s}`)).toEqual([]);
});

test('each attempt is a fresh process; a timed-out attempt’s process is killed', async () => {
  const f = path.join(tmp, `count-${Math.floor(Math.random() * 1e9)}`);
  const s = sleeper();
  const script = `n=$(expr $(cat ${f} 2>/dev/null || echo 0) + 1); echo $n > ${f}; echo "attempt $n pid $$"; if [ $n -eq 1 ]; then sleep ${s}; fi; [ $n -ge 3 ]`;
  const r = await h.run(`plan:\n- ${sh('flaky', script, { attempts: 5, timeout: '5s' })}`);
  expect(r.status).toBe('succeeded');
  const pids = [...(r.logs.get('plan.0') ?? '').matchAll(/attempt \d+ pid (\d+)/g)].map((m) => m[1]);
  expect(new Set(pids).size).toBe(3);
  expect(pidsMatching(`sleep ${s}`)).toEqual([]);
  expect(stepOf(r, 'plan.0')).toMatchObject({ state: 'succeeded', attempts: 3 });
});

test('a background process a task leaves behind is stopped when the task ends', async () => {
  const s = sleeper();
  const r = await h.run(`plan:\n- ${sh('bg', `sleep ${s} & echo started`)}`);
  expect(r.status).toBe('succeeded');
  expect(pidsMatching(`sleep ${s}`)).toEqual([]);
});

test('an abort kills every running branch’s and across iteration’s process', async () => {
  const [a, b, c] = [sleeper(), sleeper(), sleeper()];
  const plan = `plan:
- in_parallel:
  - ${sh('a', `sleep ${a}`, { attempts: 3 })}
  - ${sh('b', `sleep ${b}`)}
  - ${JSON.stringify({ ...JSON.parse(sh('c', `sleep ${c}((.:i))`)), across: [{ var: 'i', values: [1, 2], max_in_flight: 'all' }] })}
`;
  const handle = await h.start(plan);
  await waitFor('every branch', () => [a, b, `${c}1`, `${c}2`].every((m) => pidsMatching(`sleep ${m}`).length > 0));
  await handle.cancel();
  expect((await h.finish(handle)).status).toBe('aborted');
  for (const m of [a, b, c]) expect(pidsMatching(`sleep ${m}`)).toEqual([]);
});

test('an aborted process that ignores SIGTERM is killed after the grace period', async () => {
  const s = sleeper();
  const handle = await h.start(`plan:\n- ${sh('stubborn', `trap "" TERM; sleep ${s}; echo survived`)}`);
  await waitFor('the step process', () => pidsMatching(`sleep ${s}`).length > 0);
  await handle.cancel();
  const r = await h.finish(handle);
  expect(r.status).toBe('aborted');
  expect(pidsMatching(`sleep ${s}`)).toEqual([]);
  expect(r.logs.get('plan.0') ?? '').not.toContain('survived');
});
