// What the local runtime does with a step's processes under timeout and attempts (the
// semantics themselves: modifiers.test.ts on the fake runtime): a timed-out step's process is
// killed, each attempt is a fresh process, a process a task leaves behind is stopped.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { killMatching, pidsMatching, sh, startHarness, type BuildRun, type Harness } from './harness';

let h: Harness;
let tmp: string;
const markers: string[] = [];
beforeAll(async () => {
  h = await startHarness();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-processes-'));
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
  const r = await h.run(`plan:\n- ${sh('flaky', script, { attempts: 5, timeout: '2s' })}`);
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
