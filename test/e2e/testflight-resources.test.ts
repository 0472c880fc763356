// Concourse's testflight/resource_type_test.go on two of its fixtures, resource-types-with-params.yml
// and resource-type-defaults.yml, unchanged: resource_types entries built from `mock` (its image
// mirroring itself) run as the base type mock (docs/pipelines.md), with the entry's `defaults`
// under each resource's source for check, get, put and the implicit get after the put. And
// put_inputs_test.go on put-inputs.yml, unchanged, without its `fly intercept ... -- ls` parts
// (Causeway has no intercept): test/workflows/resources.test.ts lists the put's directory instead.
import { randomUUID } from 'node:crypto';
import { expectInOrder, testflight } from './testflight';

jest.setTimeout(600_000);
const tf = testflight('resources');
let hash: string;
beforeEach(() => {
  hash = randomUUID();
});

describe('Configuring a resource type in a pipeline config', () => {
  test('with custom resource types that have params: can use a custom resource with parameters', async () => {
    await tf.setAndUnpausePipeline('resource-types-with-params', '-v', `hash=${hash}`);
    const watch = await tf.fly('trigger-job', '-j', tf.inPipeline('resource-test'), '-w');
    expect(watch.code).toBe(0);
    expect(watch.stdout).toContain(hash);
  });

  test('when resource type has defaults: applies the defaults for check, get, and put steps', async () => {
    await tf.setAndUnpausePipeline('resource-type-defaults', '-v', `hash=${hash}`);
    const getAndPut = await tf.fly('trigger-job', '-j', tf.inPipeline('some-job'), '-w');
    expect(getAndPut.code).toBe(0);
    expectInOrder(
      getAndPut.stdout,
      'defaulted',
      `fetching version: ${hash}`,
      'defaulted',
      'pushing version: put-version',
      'defaulted',
      'fetching version: put-version',
    );
  });
});

describe('A put step with inputs', () => {
  // Each job gets two or three mock versions and puts some-resource with no version, which mock
  // refuses; the Go test runs them with flyUnsafe (exit status unchecked) and intercepts the put.
  test.each([
    'job-using-specified-inputs',
    'job-using-all-inputs',
    'job-using-empty-inputs',
    'job-using-no-inputs',
    'job-using-detect-inputs-simple',
    'job-using-detect-inputs-complex',
  ])('%s: runs its put (which inputs it gets: test/workflows/resources.test.ts)', async (job) => {
    await tf.setAndUnpausePipeline('put-inputs');
    const run = await tf.fly('trigger-job', '-j', tf.inPipeline(job), '-w');
    expect(run.stdout).toContain('fetching version: v1');
    expect(run.stdout).toMatch(/no version specified|invalid params/);
    expect(run.code).not.toBe(0);
  });
});
