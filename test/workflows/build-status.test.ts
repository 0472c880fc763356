// CausewayStatus and `causeway builds` for every way a build ends outside its steps: failing
// before the first step, terminated; against the real servers.
import type { WorkflowHandle } from '@temporalio/client';
import { awaitBuild, buildStatusOf, statusClause } from '../../common/build-client';
import { CausewayStatus } from '../../common/search-attributes';
import { BUILD_WORKFLOW } from '../../schemas/build';
import { killMatching, marker, pidsMatching, sh, startHarness, waitFor, type Harness } from './harness';

let h: Harness;
const markers: string[] = [];
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  for (const m of markers) killMatching(m);
  await h.stop();
});

/** The build as `causeway builds` lists it (visibility catches up after a moment), or undefined. */
async function listed(handle: WorkflowHandle, status: 'errored' | 'started'): Promise<string | undefined> {
  const query = `WorkflowType = '${BUILD_WORKFLOW}' AND WorkflowId = '${handle.workflowId}' AND ${statusClause(status)}`;
  for await (const wf of h.client.workflow.list({ query }))
    return buildStatusOf(wf.typedSearchAttributes.get(CausewayStatus), wf.status.name);
  return undefined;
}

describe('CausewayStatus and causeway builds, however a build ends', () => {
  test('failing before the first step: CausewayStatus errored', async () => {
    const handle = await h.start(`plan:\n- ${sh('never', 'true')}`, { uploads: ['never-uploaded'] });
    const r = await awaitBuild(handle);
    expect(r.status).toBe('errored');
    expect(r.message).toContain('never-uploaded');
    expect((await handle.describe()).searchAttributes.CausewayStatus).toEqual(['errored']);
    expect(await waitFor('the build listed as errored', () => listed(handle, 'errored'))).toBe('errored');
  });

  test('terminated: the attribute stays started, but builds shows errored and --status errored finds it', async () => {
    const m = marker('terminate');
    markers.push(m);
    const handle = await h.start(`plan:\n- ${sh('waits', `while true; do sleep 0.2; done # ${m}`)}`);
    await waitFor('the step to run', () => pidsMatching(m).length > 0);
    expect(await listed(handle, 'started')).toBe('started');
    await handle.terminate('by the test');
    expect((await handle.describe()).searchAttributes.CausewayStatus).toEqual(['started']);
    expect(await waitFor('the build listed as errored', () => listed(handle, 'errored'))).toBe('errored');
    expect(await listed(handle, 'started')).toBeUndefined();
  });
});
