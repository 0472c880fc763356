// Concourse's testflight/resource_check_test.go on its fixture, resource-check.yml, unchanged.
import { randomUUID } from 'node:crypto';
import { testflight } from './testflight';

jest.setTimeout(600_000);
const tf = testflight('checks');
let hash: string;
beforeEach(() => {
  hash = randomUUID();
});

describe('checking a resource', () => {
  test('saves the versions', async () => {
    await tf.setAndUnpausePipeline('resource-check', '-v', `unique_version=${hash}`, '-v', 'check_failure=');
    const check = await tf.fly('check-resource', '-r', tf.inPipeline('my-resource'));
    // fly prints the check build's status (`succeeded`); Causeway what the check found.
    expect(check.code).toBe(0);
    expect(check.stderr + check.stdout).toContain('my-resource');
    const versions = await tf.fly('resource-versions', '-r', tf.inPipeline('my-resource'));
    expect(versions.code).toBe(0);
    expect(versions.stdout).toContain(hash);
  });

  test('when checking fails: the check says so, with the failure', async () => {
    await tf.setAndUnpausePipeline('resource-check', '-v', `unique_version=${hash}`, '-v', 'check_failure=super broken');
    const check = await tf.fly('check-resource', '-r', tf.inPipeline('my-resource'));
    // fly exits 1 (the check build failed); Causeway's CLI exits 2 for an error it reports itself.
    expect(check.code).toBe(2);
    expect(check.stderr).toContain('super broken');
    expect(check.stderr).toContain('failed');
  });
});
