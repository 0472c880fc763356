// Concourse's testflight/automatic_archiving_test.go on its fixtures (archive-pipeline-1/2/3),
// unchanged: a pipeline a set_pipeline step set archives itself once its parent no longer sets
// it: the step is removed, the job is removed, the parent is destroyed or archived. Each
// archived pipeline is then listed as fly's integration tests list one (fly/integration/
// pipelines_test.go): by `pipelines --include-archived` only; testflight lists none.
import { randomUUID } from 'node:crypto';
import { waitFor } from '../workflows/harness';
import { pipelineReader } from './pipeline-cli';
import { testflight } from './testflight';

jest.setTimeout(600_000);
const tf = testflight('archiving');
const reader = pipelineReader(tf.fly);
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

/**
 * The child is archived: get-pipeline no longer finds it (Concourse's Eventually: 40 s), and
 * `pipelines` lists it only with --include-archived, paused and without its configuration.
 */
async function archived(): Promise<void> {
  await waitFor(
    `pipeline ${child} to be archived`,
    async () => {
      const r = await tf.fly('get-pipeline', '-p', child);
      return r.code !== 0 && r.stderr.includes(`no pipeline ${child}`);
    },
    40_000,
  );
  // Visibility lists the closed workflow a moment after it closed.
  const row = await waitFor(
    `pipeline ${child} to be listed archived`,
    async () => (await reader.pipelines('--include-archived'))[child],
    10_000,
  );
  expect(row).toEqual({ name: child, ref: child, paused: true, archived: true, jobs: 0, resources: 0 });
  expect((await reader.pipelines())[child]).toBeUndefined();
}

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
  // A destroyed pipeline is gone, archived or not.
  expect((await reader.pipelines('--include-archived'))[tf.pipeline]).toBeUndefined();
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
  // fly's table: an archived column after the flags, only with --include-archived.
  const listed = await tf.fly('pipelines', '--include-archived');
  expect(listed.stdout).toMatch(/name\s+paused\s+archived\s+jobs\s+resources/);
  expect(listed.stdout).toMatch(new RegExp(`${tf.pipeline}\\s+yes\\s+yes\\s+0\\s+0`));
  expect((await tf.fly('pipelines')).stdout).not.toContain(tf.pipeline);
  expect((await reader.pipelines())[tf.pipeline]).toBeUndefined();
});

test("an archived pipeline set again numbers its builds on and stays paused, as Concourse's", async () => {
  expect((await tf.fly('archive-pipeline', '-n', '-p', tf.pipeline)).code).toBe(0);
  await waitFor(
    `pipeline ${tf.pipeline} to be listed archived`,
    async () => (await reader.pipelines('--include-archived'))[tf.pipeline]?.archived,
    10_000,
  );
  await tf.setPipeline('archive-pipeline-1', '-v', `pipeline_name=${child}`);
  expect((await reader.pipelines('--include-archived'))[tf.pipeline]).toMatchObject({
    paused: true,
    archived: false,
    jobs: 1,
    resources: 1,
  });
  // #1 ran before the archive (beforeEach); paused, #2 waits.
  expect((await tf.fly('trigger-job', '-j', tf.inPipeline('sp'))).stderr).toContain(`started ${tf.pipeline}/sp #2`);
});

test('an archived instance is listed by its name and instance vars, which its key only hashes', async () => {
  const instance = `${tf.pipeline}/branch:"feature/x"`;
  await tf.setPipeline('archive-pipeline-1', '-i', 'branch=feature/x', '-v', `pipeline_name=${child}`);
  expect((await tf.fly('archive-pipeline', '-n', '-p', instance)).stderr).toContain(`archived '${instance}'`);
  const row = await waitFor(
    `pipeline ${instance} to be listed archived`,
    async () => (await reader.pipelines('--include-archived'))[instance],
    10_000,
  );
  expect(row).toEqual({
    name: tf.pipeline,
    instance_vars: { branch: 'feature/x' },
    ref: instance,
    paused: true,
    archived: true,
    jobs: 0,
    resources: 0,
  });
  // The plain pipeline of that name is set still.
  expect((await reader.pipelines('--include-archived'))[tf.pipeline]).toMatchObject({ archived: false, jobs: 1 });
});

test('archive-pipeline -a archives every pipeline that is set, from the one listing', async () => {
  const r = await tf.fly('archive-pipeline', '-n', '-a');
  expect(r.stderr).toContain(`archived '${tf.pipeline}'`);
  expect(r.stderr).toContain(`archived '${child}'`);
  await waitFor(
    'both to be listed archived',
    async () => {
      const rows = await reader.pipelines('--include-archived');
      return rows[tf.pipeline]?.archived && rows[child]?.archived;
    },
    10_000,
  );
  expect(Object.keys(await reader.pipelines())).not.toContain(tf.pipeline);
});

test("rename-pipeline refuses a name that is set and takes an archived pipeline's: that name is set again", async () => {
  expect((await tf.fly('rename-pipeline', '-o', tf.pipeline, '-n', child)).stderr).toContain(`pipeline '${child}' already exists`);
  expect((await tf.fly('archive-pipeline', '-n', '-p', child)).code).toBe(0);
  await waitFor(
    `pipeline ${child} to be listed archived`,
    async () => (await reader.pipelines('--include-archived'))[child]?.archived,
    10_000,
  );
  expect((await tf.fly('rename-pipeline', '-o', tf.pipeline, '-n', child)).stderr).toContain(`pipeline successfully renamed to '${child}'`);
  expect((await reader.pipelines('--include-archived'))[child]).toMatchObject({ archived: false, jobs: 1, resources: 1 });
});
