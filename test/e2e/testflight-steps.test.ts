// Concourse's testflight step tests on their fixtures, unchanged: hooks_test.go, timeout_test.go,
// timeout_hooks_test.go, try_test.go, retry_test.go, do_test.go, fail_test.go. Exit statuses
// are fly's (0 succeeded, 1 failed, 2 errored, 3 aborted). Two things of fly's are not asserted:
// the "initializing" line fly prints for a build's image (Causeway's watch prints step headers
// instead) and retry_test.go's `fly intercept` cases (Causeway has no intercept).
import fs from 'node:fs';
import { waitFor } from '../workflows/harness';
import { expectInOrder, testflight } from './testflight';

jest.setTimeout(600_000);
const tf = testflight('steps');

const lines = (out: string) => out.split('\n').map((l) => l.trim());

test('hooks: performs hooks under the right conditions', async () => {
  await tf.setAndUnpausePipeline('hooks');
  const outcomes = ['success', 'failure', 'abort', 'error'];
  // The hooks that must not run: neither `X job on Y` nor `X job on job Y` for the other outcomes.
  const expectNone = (out: string, who: string, ran: string) => {
    for (const o of outcomes.filter((x) => x !== ran)) {
      expect(lines(out)).not.toContain(`${who} job on ${o}`);
      expect(lines(out)).not.toContain(`${who} job on job ${o}`);
    }
  };

  // performing ensure and on_success outputs on success
  const pass = await tf.triggerAndWatch('some-passing-job');
  expect(pass.code).toBe(0);
  expectInOrder(pass.stdout, 'passing job on success', 'passing job ensure', 'passing job on job success', 'passing job on job ensure');
  expectNone(pass.stdout, 'passing', 'success');

  // performing ensure and on_failure steps on failure
  const fail = await tf.triggerAndWatch('some-failing-job');
  expect(fail.code).toBe(1);
  expectInOrder(fail.stdout, 'failing job on failure', 'failing job ensure', 'failing job on job failure', 'failing job on job ensure');
  expectNone(fail.stdout, 'failing', 'failure');

  // performing ensure and on_abort steps on abort
  const watching = tf.triggerAndWatch('some-aborted-job');
  const build = `build-${tf.pipeline}:some-aborted-job:1`;
  await waitFor(
    'the task to wait to be aborted',
    async () => (await tf.fly('watch', '--no-follow', build)).stdout.includes('waiting to be aborted') || undefined,
    120_000,
  );
  expect((await tf.fly('abort', build)).code).toBe(0);
  const aborted = await watching;
  expect(aborted.code).toBe(3);
  expectInOrder(aborted.stdout, 'aborted job on abort', 'aborted job ensure', 'aborted job on job abort', 'aborted job on job ensure');
  expectNone(aborted.stdout, 'aborted', 'abort');

  // performing ensure and on_error steps on error
  const errored = await tf.triggerAndWatch('some-errored-job');
  expect(errored.code).toBe(2);
  expectInOrder(errored.stdout, 'errored job on error', 'errored job ensure', 'errored job on job error', 'errored job on job ensure');
  expectNone(errored.stdout, 'errored', 'error');
});

test('timeout: enforces the timeout', async () => {
  await tf.setAndUnpausePipeline('timeout');
  const [success, failed] = await Promise.all([tf.triggerAndWatch('duration-successful-job'), tf.triggerAndWatch('duration-fail-job')]);
  // not aborting if the step completes in time
  expect(success.code).toBe(0);
  expect(success.stdout).toContain('passing-task succeeded');
  // aborting when the step takes too long
  expect(failed.code).toBe(1);
  expect(failed.stdout + failed.stderr).toContain('timeout exceeded');
});

test('timeout and hooks: runs the failure and ensure hooks', async () => {
  await tf.setAndUnpausePipeline('timeout_hooks');
  const watch = await tf.triggerAndWatch('duration-fail-job');
  expect(watch.code).toBe(1);
  expectInOrder(watch.stdout, 'duration fail job on failure', 'duration fail job ensure');
  expect(lines(watch.stdout)).not.toContain('duration fail job on success');
});

test('try: proceeds through the plan even if the step fails', async () => {
  await tf.setAndUnpausePipeline('try');
  const watch = await tf.triggerAndWatch('try-job');
  expect(watch.code).toBe(0);
  expect(watch.stdout).toContain('passing-task succeeded');
});

test('retry: retries until the step succeeds', async () => {
  // The fixture's task writes /tmp/retry_number, which is the host's /tmp on the local runtime:
  // one left by an earlier run (another build uid's, in sticky /tmp) would fail every attempt.
  const stray = '/tmp/retry_number';
  fs.rmSync(stray, { force: true });
  await tf.setAndUnpausePipeline('retry');
  const watch = await tf.triggerAndWatch('retry-job').finally(() => fs.rmSync(stray, { force: true }));
  expect(watch.code).toBe(0);
  expectInOrder(watch.stdout, 'attempts: 1; failing', 'attempts: 2; failing', 'attempts: 3; success!', 'succeeded');
  expect(watch.stdout.match(/attempts: \d/g)).toHaveLength(3);
});

test('do: performs the do steps', async () => {
  await tf.setAndUnpausePipeline('do');
  const watch = await tf.triggerAndWatch('do-job');
  expectInOrder(watch.stdout, 'running do step 1', 'running do step 2', 'running do step 3');
});

test('fail: a task that always fails causes the build to fail', async () => {
  await tf.setAndUnpausePipeline('fail');
  const watch = await tf.triggerAndWatch('failing-job');
  expect(watch.code).toBe(1);
  expect(watch.stdout).toContain('failed');
});
