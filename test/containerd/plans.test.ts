// The shared table of plans (test/plans/table.ts) on the containerd runtime: the step trees the
// fake, local and kubernetes runtimes give, each step a container of the test registry's busybox.
import { PLANS, stepTree } from '../plans/table';
import type { Harness } from '../workflows/harness';
import { startContainerdHarness } from './harness';

let h: Harness;
beforeAll(async () => {
  h = await startContainerdHarness();
});
afterAll(async () => {
  await h.stop();
});

test.each(PLANS.map((c) => [c.name, c] as const))('%s', async (_n, c) => {
  const r = await h.run(`plan:\n${c.plan}`);
  expect({ status: r.status, steps: stepTree(r.summary?.steps) }).toEqual({ status: c.status, steps: { plan: c.status, ...c.steps } });
});
