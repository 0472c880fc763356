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

  test('with -a (async): returns once the pipeline has taken the check; its versions follow', async () => {
    // Paused: no periodic check, so the versions can only come from this one.
    expect((await tf.setPipeline('resource-check', '-v', `unique_version=${hash}`, '-v', 'check_failure=')).code).toBe(0);
    const check = await tf.fly('check-resource', '-a', '-r', tf.inPipeline('my-resource'));
    expect(check.code).toBe(0);
    expect(check.stderr).toContain(`started a check of ${tf.inPipeline('my-resource')}`);
    let versions = '';
    for (let i = 0; i < 60 && !versions.includes(hash); i++) {
      versions = (await tf.fly('resource-versions', '-r', tf.inPipeline('my-resource'))).stdout;
      if (!versions.includes(hash)) await new Promise((r) => setTimeout(r, 500));
    }
    expect(versions).toContain(hash);
    // A check the pipeline cannot take is refused at once, -a or not.
    const unknown = await tf.fly('check-resource', '-a', '-r', tf.inPipeline('no-such-resource'));
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain(`no resource no-such-resource in pipeline`);
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
