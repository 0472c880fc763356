// What a failed build names as its cause: the steps that failed it, never a failure `try` swallowed.
import { sh, startHarness, type Harness } from './harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.stop();
});

test('a failure inside try is not a cause of the build failing', async () => {
  const r = await h.run(`plan:
- try: ${sh('flaky', 'exit 5')}
- try: {do: [${sh('nested', 'exit 6')}]}
- ${sh('last', 'exit 3')}
`);
  expect(r.status).toBe('failed');
  expect(r.message).toBe('last (exit 3) failed');
  expect(r.summary?.message).toBe('last (exit 3) failed');
});
