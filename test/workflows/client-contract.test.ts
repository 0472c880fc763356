// The `build` workflow as any Temporal client sees it: a hand-written minimal input runs, and
// an input that is not a compiled plan fails the workflow at once (never a workflow task
// retried forever), naming what is wrong, with CausewayStatus errored.
import { randomUUID } from 'node:crypto';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { awaitBuild } from '../../common/build-client';
import { startHarness, type Harness } from './harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.stop();
});

const start = (input: unknown): Promise<WorkflowHandle> =>
  h.client.workflow.start('build', { taskQueue: h.taskQueue, workflowId: `build-${randomUUID()}`, args: [input] });

async function failure(handle: WorkflowHandle): Promise<ApplicationFailure> {
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause as ApplicationFailure;
}

describe('the build workflow input', () => {
  test.each([
    [
      'a plan file name instead of a compiled plan',
      { plan: 'examples/hello.yml' },
      'plan: Invalid input: expected object, received string',
    ],
    ['no argument', undefined, '(input): Invalid input: expected object'],
    [
      'a task without its name',
      { plan: { name: 'j', source: 's', plan: { kind: 'do', id: 'plan', steps: [{ kind: 'task', id: 'plan.0' }] } } },
      'plan.plan.steps[0].task:',
    ],
    [
      'an unknown step kind',
      { plan: { name: 'j', source: 's', plan: { kind: 'do', id: 'plan', steps: [{ kind: 'deploy', id: 'plan.0' }] } } },
      'plan.plan.steps[0].kind:',
    ],
  ])('%s fails the workflow at once, non-retryable, errored', async (_what, input, expected) => {
    const handle = await start(input);
    const cause = await failure(handle);
    expect(cause.type).toBe('BuildErrored');
    expect(cause.nonRetryable).toBe(true);
    expect(cause.message).toContain('invalid build input');
    expect(cause.message).toContain(expected);
    const d = await handle.describe();
    expect((d.searchAttributes as Record<string, unknown[]>).CausewayStatus).toEqual(['errored']);
    const { events } = await handle.fetchHistory();
    expect(events?.some((e) => e.workflowTaskFailedEventAttributes)).toBe(false);
    expect((await awaitBuild(handle)).status).toBe('errored');
  });

  test('a minimal hand-written input (uploads, downloads and empty maps left out) runs', async () => {
    const handle = await start({
      plan: {
        name: 'hand-written',
        source: 'client-contract.test.ts',
        plan: { kind: 'do', id: 'plan', steps: [{ kind: 'task', id: 'plan.0', task: 'hi', config: { run: { path: 'true', args: [] } } }] },
      },
    });
    const outcome = await awaitBuild(handle);
    expect(outcome.status).toBe('succeeded');
    expect(outcome.summary?.steps.find((s) => s.id === 'plan.0')).toMatchObject({ name: 'hi', state: 'succeeded', exitCode: 0 });
  });
});
