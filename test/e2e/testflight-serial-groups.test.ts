// Concourse's testflight/serial_groups_test.go on its fixtures, serial-groups.yml and
// serial-groups-inputs-updated.yml, unchanged: a pending build that cannot get its inputs does
// not hold its serial group (Concourse's getNextPendingBuildBySerialGroup skips jobs whose inputs
// are not determined), and runs with the newest versions once they exist; trigger-job of a job
// whose resource is never checked (check_every: never) checks it first.
import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { waitFor } from '../workflows/harness';
import { expectInOrder, testflight, type Spawned } from './testflight';

jest.setTimeout(600_000);
const tf = testflight('serial');
let hash: string;
beforeEach(() => {
  hash = randomUUID();
});

/** spawnFly('trigger-job', '-j', JOB, '-w'), once its build exists (the Go test only spawns it; here the order is made sure). */
async function spawnPendingTrigger(job: string): Promise<Spawned> {
  const s = tf.spawnFly('trigger-job', '-j', tf.inPipeline(job), '-w');
  await waitFor(`${job} triggered`, async () => s.exited() || s.stderr().includes(`/${job} #1`) || undefined, 120_000);
  if (s.exited()) throw new Error(`trigger-job ${job} exited: ${JSON.stringify(await s.result)}`);
  return s;
}

const ok = async (what: string, r: Promise<{ code: number | null; stdout: string; stderr: string }>) => {
  const result = await r;
  if (result.code !== 0) throw new Error(`${what} exited ${result.code}:\n${result.stdout}\n${result.stderr}`);
  return result;
};

describe('when no inputs are available for one resource', () => {
  test('runs even when another job in the serial group has a pending build', async () => {
    await tf.setAndUnpausePipeline('serial-groups', '-v', `hash=${hash}`);
    const pendingS = await spawnPendingTrigger('some-pending-job');
    await ok('trigger-job some-passing-job', tf.fly('trigger-job', '-j', tf.inPipeline('some-passing-job'), '-w'));
    // Consistently(pendingS, time.Second).ShouldNot(gexec.Exit())
    await delay(1000);
    expect(pendingS.exited()).toBe(false);
  });
});

describe('when inputs eventually become available for one resource', () => {
  test('is able to run second job with latest inputs', async () => {
    await tf.setAndUnpausePipeline('serial-groups-inputs-updated', '-v', `hash-1=${hash}`, '-v', `hash-2=${randomUUID()}`);
    // starting a pending build
    const pendingS = await spawnPendingTrigger('some-pending-job');
    // making a new version, kicking off some-passing-job
    const guid1 = await tf.newMockVersion('some-resource', 'some-1');
    let watch = await ok('trigger-job some-passing-job', tf.triggerAndWatch('some-passing-job'));
    expect(watch.stdout).toContain(guid1);
    expect(pendingS.exited()).toBe(false);
    // making another new version, kicking off some-passing-job
    const guid2 = await tf.newMockVersion('some-resource', 'some-2');
    watch = await ok('trigger-job some-passing-job', tf.triggerAndWatch('some-passing-job'));
    expect(watch.stdout).toContain(guid2);
    expect(pendingS.exited()).toBe(false);
    // making a version for the other resource: some-pending-job finally runs, with the latest of both
    const guid3 = await tf.newMockVersion('other-resource', 'other-1');
    const pending = await pendingS.result;
    expect(pending.code).toBe(0);
    expectInOrder(pending.stdout, guid2, guid3);
  });
});

describe('when a resource has check_every never configured', () => {
  test('checks the resource and runs the job', async () => {
    await tf.setAndUnpausePipeline('serial-groups', '-v', `hash=${hash}`);
    // kicking off serial-true-job
    const sess = await tf.fly('trigger-job', '-j', tf.inPipeline('serial-true-job'), '-w');
    expect(sess.code).toBe(0);
    expect(sess.stdout).toContain(hash);
  });
});
