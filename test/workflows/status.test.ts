// The `status` query, the CausewayStatus search attribute and build outcomes, against the real servers.
import fs from 'node:fs';
import type { WorkflowHandle } from '@temporalio/client';
import type { BuildSummary, StepStatus } from '../../schemas/build';
import { killMatching, pidsMatching, sh, startHarness, waitFor, type Harness } from './harness';

let h: Harness;
const markers: string[] = [];
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  for (const m of markers) killMatching(m);
  await h.stop();
});

const query = (handle: WorkflowHandle) => handle.query<BuildSummary>('status');
const find = (steps: StepStatus[], id: string) => steps.find((s) => s.id === id);
async function searchStatus(handle: WorkflowHandle): Promise<unknown> {
  const d = await handle.describe();
  return (d.searchAttributes as Record<string, unknown[]>).CausewayStatus?.[0];
}

describe('status', () => {
  test('the step tree while running and after, with states, attempts and exit codes', async () => {
    const gate = `/tmp/cw-gate-${Math.floor(Math.random() * 1e9)}`;
    markers.push(gate);
    const plan = `plan:
- ${sh('first', 'exit 0')}
- in_parallel:
  - ${sh('waits', `while [ ! -e ${gate} ]; do sleep 0.1; done`)}
  - {try: ${sh('flaky', 'exit 5', { attempts: 2 })}}
- ${sh('last', 'exit 0')}
`;
    const handle = await h.start(plan);
    await waitFor('the waiting step', () => pidsMatching(gate).length > 0);
    const running = await query(handle);
    expect(running.status).toBe('started');
    expect(find(running.steps, 'plan')).toMatchObject({ state: 'running', kind: 'do' });
    expect(find(running.steps, 'plan.0')).toMatchObject({ state: 'succeeded', exitCode: 0, parent: 'plan', name: 'first' });
    expect(find(running.steps, 'plan.1')).toMatchObject({ state: 'running', kind: 'in_parallel' });
    expect(find(running.steps, 'plan.1.in_parallel.0')).toMatchObject({ state: 'running', parent: 'plan.1', attempts: 1 });
    expect(find(running.steps, 'plan.2')?.state ?? 'pending').toBe('pending');
    await waitFor(
      'the flaky step to finish its attempts',
      async () => find((await query(handle)).steps, 'plan.1.in_parallel.1.try')?.state === 'failed',
    );
    expect(find((await query(handle)).steps, 'plan.1.in_parallel.1.try')).toMatchObject({ attempts: 2, exitCode: 5, state: 'failed' });
    expect(await searchStatus(handle)).toBe('started');

    fs.writeFileSync(gate, '');
    const r = await h.finish(handle);
    // The step runs under its build's uid and cannot remove root's file from /tmp (sticky).
    fs.rmSync(gate, { force: true });
    expect(r.status).toBe('succeeded');
    const after = await query(handle);
    expect(after.status).toBe('succeeded');
    expect(after.finishedAt).toBeDefined();
    for (const id of ['plan', 'plan.0', 'plan.1', 'plan.1.in_parallel.0', 'plan.1.in_parallel.1', 'plan.2']) {
      expect(find(after.steps, id)?.state).toBe('succeeded');
    }
    expect(await searchStatus(handle)).toBe('succeeded');
    const d = await handle.describe();
    expect(d.searchAttributes.CausewayPlan).toEqual(['test']);
  });

  test.each([
    ['succeeded', sh('ok', 'true'), 'COMPLETED'],
    ['failed', sh('bad', 'exit 1'), 'FAILED'],
    ['errored', sh('err', 'true', {}, { inputs: [{ name: 'missing' }] }), 'FAILED'],
    ['failed', sh('slow', 'sleep 5', { timeout: '500ms' }), 'FAILED'],
    ['errored', sh('tagged', 'true', { tags: ['gpu'] }), 'FAILED'],
  ])('a build that %s: outcome, CausewayStatus and workflow status agree (%#)', async (expected, step, wfStatus) => {
    const handle = await h.start(`plan:\n- ${step}`);
    const r = await h.finish(handle);
    expect(r.status).toBe(expected);
    expect(r.summary?.status ?? (await query(handle)).status).toBe(expected);
    expect(await searchStatus(handle)).toBe(expected);
    expect((await handle.describe()).status.name).toBe(wfStatus);
  });

  test('a failed build’s message names the failed tasks and their exit codes', async () => {
    const r = await h.run(`plan:\n- in_parallel: [${sh('one', 'exit 2')}, ${sh('two', 'exit 3')}]`);
    expect(r.status).toBe('failed');
    expect(r.message).toContain('one (exit 2)');
    expect(r.message).toContain('two (exit 3)');
  });

  test('large output reaches NATS byte for byte, across chunk boundaries', async () => {
    const r = await h.run(`plan:\n- ${sh('big', 'python3 -c "import sys; [sys.stdout.write(str(i) + chr(10)) for i in range(60000)]"')}`);
    expect(r.status).toBe('succeeded');
    const expected = Array.from({ length: 60000 }, (_, i) => `${i}\n`).join('');
    expect(r.logs.get('plan.0')?.length).toBe(expected.length);
    expect(r.logs.get('plan.0') === expected).toBe(true);
  });

  test('a build cancelled right after it starts ends aborted', async () => {
    const handle = await h.start(`plan:\n- ${sh('t', 'sleep 5')}\nensure: ${sh('e', 'echo ensure')}`);
    await handle.cancel();
    const r = await h.finish(handle);
    expect(r.status).toBe('aborted');
    expect(await searchStatus(handle)).toBe('aborted');
  });
});
