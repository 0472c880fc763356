import fs from 'node:fs';
import path from 'node:path';
import { awaitBuild } from '../../common/build-client';
import { retryBuild, RetryError } from '../../common/retry';
import { CausewayRetryOf } from '../../common/search-attributes';
import { startHarness, type Harness } from './harness';
import { stepWritableDir } from '../setup/step-dir';

let h: Harness;
let dir: string;
beforeAll(async () => {
  h = await startHarness();
  dir = stepWritableDir('causeway-retry-');
});
afterAll(async () => {
  await h.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const plan = (counter: string, marker: string) => `
plan:
- task: produce
  config:
    platform: linux
    outputs: [{name: art}]
    run: {path: sh, args: [-c, 'echo produce >> ${counter}; echo from-produce > art/value']}
- task: check
  config:
    platform: linux
    inputs: [{name: art}]
    run: {path: sh, args: [-c, 'echo check >> ${counter}; cat art/value; test -e ${marker}']}
- task: after
  config:
    platform: linux
    run: {path: sh, args: [-c, 'echo after >> ${counter}']}
`;

test('retry reruns from the failed step; earlier steps keep their results and artifacts', async () => {
  const counter = path.join(dir, 'counter');
  const marker = path.join(dir, 'fixed');
  const first = await h.run(plan(counter, marker));
  expect(first.status).toBe('failed');
  expect(fs.readFileSync(counter, 'utf8')).toBe('produce\ncheck\n');

  fs.writeFileSync(marker, '');
  const retried = await retryBuild(h.client, 'default', first.buildId);
  expect(retried.stepId).toBe('plan.1');
  const outcome = await awaitBuild(h.client.workflow.getHandle(first.buildId, retried.runId));
  expect(outcome.status).toBe('succeeded');
  // produce did not run again; check read the artifact produce made in the first run.
  expect(fs.readFileSync(counter, 'utf8')).toBe('produce\ncheck\ncheck\nafter\n');
  expect(outcome.summary?.steps.find((s) => s.id === 'plan.1')).toMatchObject({ state: 'succeeded' });

  const described = await h.client.workflow.getHandle(first.buildId, retried.runId).describe();
  expect(described.typedSearchAttributes.get(CausewayRetryOf)).toBe(retried.previousRunId);
});

test('retry --from reruns an earlier step too', async () => {
  const counter = path.join(dir, 'counter2');
  const marker = path.join(dir, 'fixed2');
  fs.writeFileSync(marker, '');
  const first = await h.run(plan(counter, marker));
  expect(first.status).toBe('succeeded');
  const retried = await retryBuild(h.client, 'default', first.buildId, { from: 'plan.0' });
  expect((await awaitBuild(h.client.workflow.getHandle(first.buildId, retried.runId))).status).toBe('succeeded');
  expect(fs.readFileSync(counter, 'utf8')).toBe('produce\ncheck\nafter\nproduce\ncheck\nafter\n');
});

test('retry explains what it cannot do', async () => {
  const ok = await h.run(`plan:\n- task: fine\n  config: {platform: linux, run: {path: "true"}}\n`);
  await expect(retryBuild(h.client, 'default', ok.buildId)).rejects.toThrow(RetryError);
  await expect(retryBuild(h.client, 'default', ok.buildId, { from: 'plan.9' })).rejects.toThrow(/step plan.9 never ran.*/);
});
