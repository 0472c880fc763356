// Concourse's testflight/flying_test.go, its `execute -j` (inputs-from) cases on their fixtures,
// config-test.yml and input-mapping-test.yml, unchanged: a task's inputs come from the job's
// gets at the versions its next build would get (`passed` applied), `-m` maps a task input to
// a job input.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from '../workflows/harness';
import { testflight } from './testflight';

jest.setTimeout(600_000);
const tf = testflight('execute');
let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-tf-execute-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

const taskFile = (contents: string) => {
  fs.writeFileSync(path.join(tmp, 'task.yml'), contents);
  return path.join(tmp, 'task.yml');
};

async function ok(...args: string[]): Promise<string> {
  const r = await tf.fly(...args);
  if (r.code !== 0) throw new Error(`${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

describe('when execute with -j inputs-from', () => {
  test('runs the task without error', async () => {
    await tf.setAndUnpausePipeline('config-test');
    const task = taskFile(`---
platform: linux

image_resource:
  type: mock
  source: {mirror_self: true}

inputs:
- name: some-resource

run:
  path: cat
  args: [some-resource/version]
`);
    const execute = () => ok('execute', '-c', task, '-j', tf.inPipeline('downstream-job'));
    // (Not in the Go test.) No version passed upstream-job yet: fly's "inputs are not satisfiable".
    const early = await tf.fly('execute', '-c', task, '-j', tf.inPipeline('downstream-job'));
    expect(early.code).toBe(2);
    expect(early.stderr).toContain("the job's inputs are not satisfiable: some-resource: no version of some-resource passed upstream-job");
    const unmapped = await tf.fly('execute', '-c', task, '-m', 'some-resource=other');
    expect(unmapped.code).toBe(2);
    expect(unmapped.stderr).toContain('give the job with -j PIPELINE/JOB');
    // (Not in the Go test.) trigger-job -w of that job waits, and says for what.
    const pending = tf.spawnFly('trigger-job', '-w', '-j', tf.inPipeline('downstream-job'));
    await waitFor(
      'the pending note',
      () => /pending: waiting for its inputs: .*passed upstream-job/.test(pending.stderr()) || undefined,
      30_000,
    );
    await pending.interrupt();
    // having an initial version; satisfying the job's passed constraint for the first version
    await ok('check-resource', '-r', tf.inPipeline('some-resource'), '-f', 'version:first-version');
    await ok('trigger-job', '-w', '-j', tf.inPipeline('upstream-job'));
    expect(await execute()).toContain('first-version');
    // finding another version that doesn't yet satisfy the passed constraint
    await ok('check-resource', '-r', tf.inPipeline('some-resource'), '-f', 'version:second-version');
    expect(await execute()).toContain('first-version');
    // satisfying the job's passed constraint for the second version
    await ok('trigger-job', '-w', '-j', tf.inPipeline('upstream-job'));
    expect(await execute()).toContain('second-version');
  });
});

describe('when execute with -j inputs-from and task has input mapping', () => {
  test('runs the task without error', async () => {
    const taskFileContents = `---
platform: linux

image_resource:
  type: mock
  source: {mirror_self: true}

inputs:
- name: mapped-resource

run:
  path: cat
  args: [mapped-resource/version]
`;
    const task = taskFile(taskFileContents);
    await tf.setAndUnpausePipeline('input-mapping-test', '-v', `task_content=${taskFileContents}`);
    const execute = () => ok('execute', '-c', task, '-j', tf.inPipeline('downstream-job'), '-m', 'mapped-resource=some-resource');
    // having an initial version
    await ok('check-resource', '-r', tf.inPipeline('some-resource'), '-f', 'version:first-version');
    // satisfying the job's passed constraint for the first version; making sure the second job runs before we use its inputs
    await ok('trigger-job', '-w', '-j', tf.inPipeline('upstream-job'));
    await ok('trigger-job', '-w', '-j', tf.inPipeline('downstream-job'));
    expect(await execute()).toContain('first-version');
    // finding another version that doesn't yet satisfy the passed constraint
    await ok('check-resource', '-r', tf.inPipeline('some-resource'), '-f', 'version:second-version');
    expect(await execute()).toContain('first-version');
    // satisfying the job's passed constraint for the second version
    await ok('trigger-job', '-w', '-j', tf.inPipeline('upstream-job'));
    await ok('trigger-job', '-w', '-j', tf.inPipeline('downstream-job'));
    expect(await execute()).toContain('second-version');
  });
});
