// Whether a pipeline a set_pipeline step set is abandoned by its parent, as Concourse's
// ArchiveAbandonedPipelines decides (atc/db/pipeline_lifecycle.go); which ended pipelines
// `pipelines --include-archived` reads as archived.
import { endedRuns, type PipelineRun } from '../../common/pipeline-set';
import { compilePipeline } from '../../schemas/pipeline';
import {
  abandonedBy,
  DestroyRequestSchema,
  emptyPipelineInput,
  PipelineEndSchema,
  type JobBuild,
  type PipelineView,
} from '../../schemas/pipeline-api';

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

describe('endedRuns: the run whose result says whether a pipeline is archived', () => {
  const run = (workflowId: string, runId: string, status: PipelineRun['status'], closedAt?: number): PipelineRun => ({
    workflowId,
    runId,
    status,
    ...(closedAt === undefined ? {} : { closeTime: new Date(closedAt) }),
  });

  test('the last run to close, in whatever order visibility lists them', () => {
    expect(
      endedRuns([
        run('pipeline-a', '1', 'COMPLETED', 1000),
        run('pipeline-a', '3', 'COMPLETED', 3000),
        run('pipeline-a', '2', 'COMPLETED', 2000),
      ]),
    ).toEqual([run('pipeline-a', '3', 'COMPLETED', 3000)]);
  });

  test('a pipeline set again since (a run running) has none', () => {
    expect(endedRuns([run('pipeline-a', '1', 'COMPLETED', 1000), run('pipeline-a', '2', 'RUNNING')])).toEqual([]);
  });

  test('a pipeline whose last run was terminated has none, though an earlier one completed archived', () => {
    expect(endedRuns([run('pipeline-a', '1', 'COMPLETED', 1000), run('pipeline-a', '2', 'TERMINATED', 2000)])).toEqual([]);
  });

  test('a run continued as new is followed by the run it continued as', () => {
    expect(endedRuns([run('pipeline-a', '1', 'CONTINUED_AS_NEW', 1000), run('pipeline-a', '2', 'COMPLETED', 2000)])).toEqual([
      run('pipeline-a', '2', 'COMPLETED', 2000),
    ]);
  });

  test('each pipeline on its own', () => {
    expect(
      endedRuns([run('pipeline-a', '1', 'COMPLETED', 1000), run('pipeline-b', '1', 'RUNNING'), run('pipeline-c', '1', 'COMPLETED', 500)]),
    ).toEqual([run('pipeline-a', '1', 'COMPLETED', 1000), run('pipeline-c', '1', 'COMPLETED', 500)]);
  });
});

test("the destroy update takes archive-pipeline's reason or nothing; an end is read as the workflow returns it", () => {
  expect(DestroyRequestSchema.optional().parse(undefined)).toBeUndefined();
  expect(DestroyRequestSchema.parse({ archived: 'archive-pipeline' })).toEqual({ archived: 'archive-pipeline' });
  expect(() => DestroyRequestSchema.parse({ archived: '' })).toThrow();
  expect(() => DestroyRequestSchema.parse({ archived: 'x', paused: true })).toThrow();
  const end = { counters: { unit: 3 }, archived: 'archive-pipeline', name: 'pr', instanceVars: { branch: 'feature/x' } };
  expect(PipelineEndSchema.parse(end)).toEqual(end);
  // Pipelines ended before the name was in the result.
  expect(PipelineEndSchema.parse({ counters: {} })).toEqual({ counters: {} });
  expect(PipelineEndSchema.safeParse({ counters: { unit: '3' } }).success).toBe(false);
});
