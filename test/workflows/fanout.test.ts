// Big fan-out runs in child workflows (workflows/fanout.ts): past 2,000 parallel steps, a
// sequential across, artifacts and failures coming back from parts, abort reaching them,
// and the whole step tree assembled by fullStatus; against the real servers.
import { randomUUID } from 'node:crypto';
import type { ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import { fullStatus } from '../../common/build-status';
import { FAILURE_TYPES, PART_WORKFLOW } from '../../schemas/build';
import { PART_BUDGET, slices } from '../../workflows/fanout';
import { sh, startHarness, waitFor, type Harness } from './harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.stop();
});

const across = (step: string, n: number, maxInFlight: number | 'all') =>
  JSON.stringify({
    ...JSON.parse(step),
    across: [{ var: 'i', values: Array.from({ length: n }, (_, i) => i), max_in_flight: maxInFlight }],
  });

describe('fan-out in child workflows', () => {
  test('2,100 parallel steps complete in parts, each under the pending-activity limit', async () => {
    const n = 2100;
    const handle = await h.start(`plan:\n- ${across(sh('each', 'true'), n, 'all')}`);
    const r = await h.finish(handle);
    expect(r.status).toBe('succeeded');
    expect(r.summary?.parts?.map((p) => [p.from, p.to, p.state])).toEqual(
      slices(Array(n).fill(1), PART_BUDGET).map(([from, to]) => [from, to, 'succeeded']),
    );
    const status = await fullStatus(h.client, handle.workflowId);
    const iterations = status.steps.filter((s) => s.parent === 'plan.0');
    expect(iterations).toHaveLength(n);
    expect(iterations.every((s) => s.state === 'succeeded')).toBe(true);
  }, 600_000);

  test('a sequential across past two parts runs in order, one part after another', async () => {
    const n = 2 * PART_BUDGET + 10;
    const r = await h.run(`plan:\n- ${across(sh('each', 'echo ((.:i))'), n, 1)}`);
    expect(r.status).toBe('succeeded');
    expect(r.summary?.parts?.length).toBe(Math.ceil(n / PART_BUDGET));
    expect(r.logs.get(`plan.0.across.${n - 1}`)).toBe(`${n - 1}\n`);
  }, 300_000);

  test('outputs of a long do come back from its parts; a failure stops it and names the task', async () => {
    const steps = Array.from({ length: PART_BUDGET + 50 }, (_, i) => sh(`s${i}`, 'true'));
    steps[0] = sh('make', 'echo made > out/file', {}, { outputs: [{ name: 'out' }] });
    steps[PART_BUDGET + 49] = sh('read', 'cat out/file', {}, { inputs: [{ name: 'out' }] });
    const ok = await h.run(`plan:\n- do: [${steps.join(', ')}]`);
    expect(ok.status).toBe('succeeded');
    expect(ok.logs.get(`plan.0.do.${PART_BUDGET + 49}`)).toBe('made\n');

    steps[PART_BUDGET + 10] = sh('broken', 'exit 7');
    const failed = await h.run(`plan:\n- do: [${steps.join(', ')}]\n- ${sh('after', 'true')}`);
    expect(failed.status).toBe('failed');
    expect(failed.message).toContain('broken (exit 7)');
    const status = await fullStatus(h.client, failed.buildId);
    expect(status.steps.find((s) => s.id === `plan.0.do.${PART_BUDGET + 10}`)?.state).toBe('failed');
    expect(status.steps.find((s) => s.id === `plan.0.do.${PART_BUDGET + 11}`)?.state).toBe('skipped');
    expect(status.steps.find((s) => s.id === 'plan.1')?.state).toBe('skipped');
  }, 300_000);

  test('an abort reaches the parts: steps are aborted, the build ends aborted', async () => {
    const handle = await h.start(`plan:\n- ${across(sh('each', 'sleep 600'), PART_BUDGET + 10, 5)}`);
    await waitFor('a part to start', async () => (await fullStatus(h.client, handle.workflowId)).steps.some((s) => s.state === 'running'));
    await handle.cancel();
    const r = await h.finish(handle);
    expect(r.status).toBe('aborted');
    const status = await fullStatus(h.client, handle.workflowId);
    expect(status.parts?.[0].state).toBe('aborted');
    expect(status.steps.filter((s) => s.parent === 'plan.0').every((s) => ['aborted', 'skipped'].includes(s.state))).toBe(true);
  });

  test('a client starting buildPart itself gets BuildErrored at once, before any step', async () => {
    const step = { kind: 'task', id: 'plan.0', task: 't', config: { run: { path: 'true', args: [] } } };
    const input = {
      buildId: '../other-build',
      runId: 'r',
      plan: 'p',
      taskQueue: h.taskQueue,
      workerTags: [],
      releasesArtifacts: false,
      servicesBase: 0,
      frame: { artifacts: {}, locals: {}, runKey: '1', deadlines: [] },
      list: { kind: 'steps', parent: 'plan', steps: [step] },
      limit: 1,
      failFast: false,
    };
    const handle = await h.client.workflow.start(PART_WORKFLOW, {
      taskQueue: h.taskQueue,
      workflowId: `hostile-part-${randomUUID()}`,
      args: [input],
    });
    const err = await handle.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
    expect(cause.type).toBe(FAILURE_TYPES.errored);
    expect(cause.nonRetryable).toBe(true);
    expect(cause.message).toMatch(
      /^invalid buildPart input \(a part is started by its build only\): buildId: `\.\.\/other-build` is not the build that started this part \(none did\); buildId: `\.\.\/other-build` contains `\/`/,
    );
    const history = await handle.fetchHistory();
    expect(history.events?.some((e) => e.activityTaskScheduledEventAttributes)).toBe(false);
  });
});
