// Concourse's testflight/automatic_archiving_test.go on its fixtures (archive-pipeline-1/2/3),
// unchanged: a pipeline a set_pipeline step set archives itself once its parent no longer sets
// it: the step is removed, the job is removed, the parent is destroyed or archived.
import { randomUUID } from 'node:crypto';
import { waitFor } from '../workflows/harness';
import { testflight } from './testflight';

jest.setTimeout(600_000);
const tf = testflight('archiving');
let child: string;

beforeEach(async () => {
  child = `tf-child-${randomUUID().slice(0, 8)}`;
  await tf.setAndUnpausePipeline('archive-pipeline-1', '-v', `pipeline_name=${child}`);
  const set = await tf.triggerAndWatch('sp');
  expect(set.stdout).toContain(`setting pipeline: ${child}`);
  expect(set.stdout).toContain('done');
  expect((await tf.fly('get-pipeline', '-p', child)).stdout).toContain('normal-job');
});
afterEach(() => tf.fly('destroy-pipeline', '-n', '-p', child));

/** The child is archived: get-pipeline no longer finds it (Concourse's Eventually: 40 s). */
const archived = () =>
  waitFor(
    `pipeline ${child} to be archived`,
    async () => {
      const r = await tf.fly('get-pipeline', '-p', child);
      return r.code !== 0 && r.stderr.includes(`no pipeline ${child}`);
    },
    40_000,
  );

test('when the step is removed from the parent pipeline config, the child is archived', async () => {
  await tf.setPipeline('archive-pipeline-2');
  expect((await tf.triggerAndWatch('sp')).stderr).toContain('succeeded');
  await archived();
});

test('when the job is removed from the parent pipeline config, the child is archived', async () => {
  await tf.setPipeline('archive-pipeline-3');
  await archived();
});

test('when the parent pipeline is destroyed, the child is archived', async () => {
  expect((await tf.fly('destroy-pipeline', '-n', '-p', tf.pipeline)).code).toBe(0);
  await archived();
});

test('a child its parent sets again stays', async () => {
  // Nothing to change: the build becomes the child's setter all the same (Concourse's SetParentIDs).
  expect((await tf.triggerAndWatch('sp')).stdout).toContain('no changes to apply.');
  // Longer than the child's look at its parent (15 s).
  await new Promise((r) => setTimeout(r, 20_000));
  expect((await tf.fly('get-pipeline', '-p', child)).stdout).toContain('normal-job');
});

test('a child of a parent renamed since stays: it follows its parent to its new name', async () => {
  const renamed = `${tf.pipeline}-renamed`;
  try {
    expect((await tf.fly('rename-pipeline', '-o', tf.pipeline, '-n', renamed)).code).toBe(0);
    await new Promise((r) => setTimeout(r, 20_000));
    expect((await tf.fly('get-pipeline', '-p', child)).stdout).toContain('normal-job');
  } finally {
    await tf.fly('destroy-pipeline', '-n', '-p', renamed);
  }
});

test('when the parent pipeline is archived, the child is archived', async () => {
  expect((await tf.fly('archive-pipeline', '-n', '-p', tf.pipeline)).stderr).toContain(`archived '${tf.pipeline}'`);
  await archived();
  const again = await tf.fly('archive-pipeline', '-n', '-p', tf.pipeline);
  expect(again.stderr).toContain(`pipeline '${tf.pipeline}' not found`);
});
