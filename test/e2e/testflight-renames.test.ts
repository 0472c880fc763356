// Concourse's testflight/rename_job_test.go, rename_resource_test.go and rename_pipeline_test.go's
// first half on their fixtures (simple, rename-simple, resource-with-versions, rename-resource),
// unchanged: a job or resource set again with `old_name:` keeps its history.
import { waitFor } from '../workflows/harness';
import { testflight } from './testflight';

jest.setTimeout(600_000);
const tf = testflight('renames');

/** The job's builds once they read `lines`: the pipeline records a build's end at its next look (every 2 s). */
const buildsAre = (job: string, lines: string[]) =>
  waitFor(`${job}'s builds to be ${lines.join(', ')}`, async () => {
    const now = await tf.builds(job);
    return JSON.stringify(now) === JSON.stringify(lines) ? now : undefined;
  });

test('renaming a job retains its history: its builds, under their ids, and its numbering', async () => {
  await tf.setAndUnpausePipeline('simple');
  expect((await tf.triggerAndWatch('simple')).stdout).toContain('Hello, world!');
  await buildsAre('simple', ['#1 succeeded']);

  const set = await tf.setPipeline('rename-simple');
  expect(set.stdout).toContain('+  old_name: simple');

  expect(await tf.builds('rename-simple')).toEqual(['#1 succeeded']);
  const listed = await tf.fly('builds', '-j', tf.inPipeline('rename-simple'));
  expect(listed.stdout).toContain(`build-${tf.pipeline}:simple:1`);
  expect((await tf.triggerAndWatch('rename-simple')).stdout).toContain('Hello, world!');
  await buildsAre('rename-simple', ['#1 succeeded', '#2 succeeded']);
  const both = (await tf.fly('builds', '-j', tf.inPipeline('rename-simple'))).stdout;
  expect(both).toContain(`build-${tf.pipeline}:simple:1`);
  expect(both).toContain(`build-${tf.pipeline}:rename-simple:2`);
  // watch -j finds the build from before the rename by its number.
  expect((await tf.fly('watch', '-j', tf.inPipeline('rename-simple'), '-b', '1')).stdout).toContain('Hello, world!');
});

test('renaming a resource preserves its version history', async () => {
  await tf.setAndUnpausePipeline('resource-with-versions');
  const guid1 = await tf.newMockVersion('some-resource', 'guid1');
  const guid2 = await tf.newMockVersion('some-resource', 'guid2');
  const guid3 = await tf.newMockVersion('some-resource', 'guid3');
  expect((await tf.triggerAndWatch('some-passing-job')).stdout).toContain(guid3);

  await tf.setPipeline('rename-resource');
  expect((await tf.triggerAndWatch('some-passing-job')).stdout).toContain(guid3);
  const versions = (await tf.fly('resource-versions', '-r', tf.inPipeline('some-new-resource'))).stdout;
  expect(versions).toContain(guid3);
  expect(versions).toContain(guid2);
  expect(versions).toContain(guid1);
  await buildsAre('some-passing-job', ['#1 succeeded', '#2 succeeded']);
});

test('a renamed pipeline runs scheduled builds, numbering on; its builds from before keep their ids', async () => {
  await tf.setAndUnpausePipeline('simple');
  expect((await tf.triggerAndWatch('simple')).stdout).toContain('Hello, world!');
  const renamed = `${tf.pipeline}-renamed`;
  try {
    const rp = await tf.fly('rename-pipeline', '-o', tf.pipeline, '-n', renamed);
    expect(rp.stderr).toContain(`pipeline successfully renamed to '${renamed}'`);
    expect((await tf.fly('jobs', '-p', tf.pipeline)).stderr).toContain(`no pipeline ${tf.pipeline}`);
    expect((await tf.fly('rename-pipeline', '-o', tf.pipeline, '-n', 'x')).stderr).toContain(`pipeline '${tf.pipeline}' not found`);

    const watched = await tf.fly('trigger-job', '-j', `${renamed}/simple`, '-w');
    expect(watched.stdout).toContain('Hello, world!');
    expect(watched.stderr).toContain(`started ${renamed}/simple #2`);
    const listed = (await tf.fly('builds', '-p', renamed)).stdout;
    expect(listed).toContain(`build-${tf.pipeline}:simple:1`);
    expect(listed).toContain(`build-${renamed}:simple:2`);
    expect((await tf.fly('watch', '-j', `${renamed}/simple`, '-b', '1')).stdout).toContain('Hello, world!');
  } finally {
    await tf.fly('destroy-pipeline', '-n', '-p', renamed);
  }
});
