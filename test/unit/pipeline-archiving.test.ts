// Whether a pipeline a set_pipeline step set is abandoned by its parent, as Concourse's
// ArchiveAbandonedPipelines decides (atc/db/pipeline_lifecycle.go).
import { compilePipeline } from '../../schemas/pipeline';
import { abandonedBy, emptyPipelineInput, type JobBuild, type PipelineView } from '../../schemas/pipeline-api';

const parent = (jobs: string[], builds: Partial<JobBuild>[] = [], renamed: Record<string, string> = {}): PipelineView => {
  const config = compilePipeline({
    name: 'parent',
    text: `jobs:\n${jobs.map((j) => `- {name: ${j}, plan: [{task: t, config: {platform: linux, run: {path: "true"}}}]}`).join('\n')}\n`,
    file: 'p.yml',
  });
  const input = emptyPipelineInput(config);
  input.state.builds = builds.map((b) => ({ job: 'sp', number: 1, status: 'succeeded', manual: false, inputs: {}, ...b }));
  input.state.renamed = { jobs: renamed, resources: {} };
  return { ...input, next: {} };
};
const setBy = { pipeline: 'parent', job: 'sp', number: 2, startedAt: 0 };

test('set by the latest build, or by one before a build that has not succeeded: kept', () => {
  expect(abandonedBy(setBy, parent(['sp'], [{ number: 2 }]))).toBeUndefined();
  expect(abandonedBy(setBy, parent(['sp'], [{ number: 2 }, { number: 3, status: 'failed' }]))).toBeUndefined();
  // A build still running may set it again: only completed builds count.
  expect(abandonedBy(setBy, parent(['sp'], [{ number: 2 }, { number: 3, status: 'started' }]))).toBeUndefined();
});

test('a later build of the job succeeded without setting it, or the job left the parent: abandoned', () => {
  expect(abandonedBy(setBy, parent(['sp'], [{ number: 2 }, { number: 3 }]))).toBe('build #3 of parent/sp succeeded without setting it');
  expect(abandonedBy(setBy, parent(['other']))).toBe('job sp left pipeline parent');
});

test('a job renamed with old_name is followed', () => {
  expect(abandonedBy(setBy, parent(['sp-2'], [{ job: 'sp-2', number: 2 }], { sp: 'sp-2' }))).toBeUndefined();
});
