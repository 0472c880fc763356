// The shared table of plans (test/plans/table.ts) on the fake and the local runtime: the same
// step trees. A runtime joins with one line in RUNTIMES (the kubernetes one: test/k8s/plans.test.ts).
import { PLANS, stepTree } from '../plans/table';
import { startHarness, type Harness, type HarnessOptions } from './harness';

const RUNTIMES: [string, HarnessOptions][] = [
  ['fake', { runtime: 'fake' }],
  ['local', { runtime: 'local' }],
];

describe.each(RUNTIMES)('the table of plans on the %s runtime', (_name, opts) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(opts);
  });
  afterAll(async () => {
    await h.stop();
  });

  test.each(PLANS.map((c) => [c.name, c] as const))('%s', async (_n, c) => {
    const r = await h.run(`plan:\n${c.plan}`);
    expect({ status: r.status, steps: stepTree(r.summary?.steps) }).toEqual({ status: c.status, steps: { plan: c.status, ...c.steps } });
  });
});
