// What the Temporal UI reads from a build's history: a task that exits non-zero is a failed
// activity (not a green "Completed" one) naming the step, its exit code and its last log lines,
// while the build's own result, hooks and attempts stay as Concourse defines them.
import { ApplicationFailure } from '@temporalio/common';
import { decodeOptionalFailureToOptionalError } from '@temporalio/common/lib/internal-non-workflow';
import { ACTIVITY_FAILURES } from '../../schemas/build';
import { sh, startHarness, type Harness } from './harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.stop();
});

/** The runTask activities' failures in a build's history, decoded as the UI shows them through the codec server. */
async function failedTaskActivities(buildId: string): Promise<ApplicationFailure[]> {
  const history = await h.client.workflow.getHandle(buildId).fetchHistory();
  const out: ApplicationFailure[] = [];
  for (const event of history.events ?? []) {
    const failure = event.activityTaskFailedEventAttributes?.failure;
    if (!failure) continue;
    const err = await decodeOptionalFailureToOptionalError(h.client.options.loadedDataConverter, failure);
    if (err instanceof ApplicationFailure) out.push(err);
  }
  return out;
}

test('a failed task fails its activity, non-retryable, naming the step, the exit code and the last log lines', async () => {
  const script = 'echo partial > out/partial; for i in $(seq 1 30); do echo line $i; done; echo boom; exit 3';
  const hook = JSON.parse(sh('reads-output', 'cat out/partial', {}, { inputs: [{ name: 'out' }] })) as unknown;
  const r = await h.run(`plan:\n- ${sh('unit', script, { attempts: 2, on_failure: hook }, { outputs: [{ name: 'out' }] })}`);
  expect(r.status).toBe('failed');
  expect(r.message).toBe('unit (exit 3) failed');
  const unit = r.summary?.steps.find((s) => s.name === 'unit');
  expect(unit).toMatchObject({ state: 'failed', exitCode: 3, attempts: 2 });
  // A failed task's outputs still reach its hooks, as in Concourse.
  expect(r.logs.get(r.summary?.steps.find((s) => s.name === 'reads-output')?.id ?? '')).toBe('partial\n');

  const failures = await failedTaskActivities(r.buildId);
  expect(failures).toHaveLength(2);
  for (const f of failures) {
    expect(f.type).toBe(ACTIVITY_FAILURES.taskFailed);
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toContain(`task unit (${unit?.id}) failed with exit code 3`);
    expect(f.message).toContain('line 30');
    expect(f.message).toContain('boom');
    expect(f.message).not.toContain('line 1\n');
  }
});

test('a task that succeeds completes its activity; a failure inside try still fails its activity', async () => {
  const r = await h.run(`plan:
- ${sh('ok', 'echo fine')}
- try: ${sh('swallowed', 'exit 4')}
`);
  expect(r.status).toBe('succeeded');
  const failures = await failedTaskActivities(r.buildId);
  expect(failures.map((f) => f.message.split(';')[0])).toEqual([
    `task swallowed (${r.summary?.steps.find((s) => s.name === 'swallowed')?.id}) failed with exit code 4`,
  ]);
});
