// `old_name:` of a job or resource, as Concourse's updateJobsName/updateResourcesName
// (atc/db/team.go) and testflight's rename_job_test / rename_resource_test: what the pipeline
// kept under the old name moves to the new one.
import { compilePipeline, type PipelineConfig } from '../../schemas/pipeline';
import { buildWorkflowId, emptyPipelineInput, type SchedulerState } from '../../schemas/pipeline-api';
import { applyRenames, findBuild, renamesOf, resetChangedResources, withRenamedResources } from '../../workflows/scheduler';

const compile = (text: string): PipelineConfig => compilePipeline({ name: 'p', text, file: 'p.yml' });

const file = (job: string, resource: string, extra = '') => `
resources:
- name: ${resource}
  type: mock
  source: {mirror_self: true}${extra}
jobs:
- name: ${job}
  plan:
  - get: ${resource}
  - task: t
    config: {platform: linux, run: {path: "true"}}
`;

function stateWithHistory(): SchedulerState {
  const state = emptyPipelineInput(compile(file('simple', 'repo'))).state;
  state.versions.repo = [{ seq: 1, version: { v: '1' } }];
  state.pins.repo = { v: '1' };
  state.pinComments = { repo: 'hold' };
  state.counters.simple = 2;
  state.pausedJobs = ['simple'];
  state.builds = [
    { job: 'simple', number: 1, status: 'succeeded', manual: true, inputs: { repo: { resource: 'repo', seq: 1, version: { v: '1' } } } },
    { job: 'simple', number: 2, status: 'started', manual: false, inputs: { repo: { resource: 'repo', seq: 1, version: { v: '1' } } } },
  ];
  return state;
}

test('old_name is compiled on jobs and resources; anything but a name is refused at its line', () => {
  const config = compile(
    file('rename-simple', 'repo-2', '\n  old_name: repo').replace('- name: rename-simple', '- name: rename-simple\n  old_name: simple'),
  );
  expect(config.jobs[0]).toMatchObject({ name: 'rename-simple', oldName: 'simple' });
  expect(config.resources[0]).toMatchObject({ name: 'repo-2', oldName: 'repo' });
  expect(() => compile(file('j', 'r', '\n  old_name: [x]'))).toThrow(
    'p.yml:6:13: resources[0].old_name: old_name is the name the resource had',
  );
});

test("a renamed job keeps its builds (under their workflow ids), numbering and pause; a renamed resource its versions, pin and builds' inputs", () => {
  const old = compile(file('simple', 'repo'));
  const next = compile(
    file('rename-simple', 'renamed-repo', '\n  old_name: repo').replace(
      '- name: rename-simple',
      '- name: rename-simple\n  old_name: simple',
    ),
  );
  const state = stateWithHistory();
  const lastChecked: Record<string, number> = { repo: 5 };
  const checkErrors: Record<string, string> = { 'job simple': 'build 3 could not start' };
  const renames = renamesOf(old, next, state);
  expect(renames).toEqual({ jobs: [{ from: 'simple', to: 'rename-simple' }], resources: [{ from: 'repo', to: 'renamed-repo' }] });
  applyRenames(state, renames, lastChecked, checkErrors);

  expect(state.builds.map((b) => [b.job, buildWorkflowId('p', b), b.inputs.repo.resource])).toEqual([
    ['rename-simple', 'build-p:simple:1', 'renamed-repo'],
    ['rename-simple', 'build-p:simple:2', 'renamed-repo'],
  ]);
  expect(state.counters).toEqual({ simple: 2, 'rename-simple': 2 });
  expect(state.pausedJobs).toEqual(['rename-simple']);
  expect(state.versions).toEqual({ 'renamed-repo': [{ seq: 1, version: { v: '1' } }] });
  expect(state.pins).toEqual({ 'renamed-repo': { v: '1' } });
  expect(state.pinComments).toEqual({ 'renamed-repo': 'hold' });
  expect(lastChecked).toEqual({ 'renamed-repo': 5 });
  expect(checkErrors).toEqual({ 'job rename-simple': 'build 3 could not start' });
  expect(state.renamed).toEqual({ jobs: { simple: 'rename-simple' }, resources: { repo: 'renamed-repo' } });
  // A running build signals under the names it started with.
  expect(findBuild(state, 'simple', 2)?.job).toBe('rename-simple');
  // The same source under the new name is the same resource: nothing is checked again.
  expect(resetChangedResources(withRenamedResources(old, renames.resources), next, state)).toEqual([]);
});

test('an old_name the pipeline never had, or equal to the name, renames nothing; a second set of the same file renames nothing more', () => {
  const old = compile(file('simple', 'repo'));
  const state = stateWithHistory();
  expect(renamesOf(old, compile(file('other', 'repo').replace('- name: other', '- name: other\n  old_name: nope')), state)).toEqual({
    jobs: [],
    resources: [],
  });
  const next = compile(file('simple', 'repo').replace('- name: simple', '- name: simple\n  old_name: simple'));
  expect(renamesOf(old, next, state)).toEqual({ jobs: [], resources: [] });

  const renamed = compile(file('b', 'repo').replace('- name: b', '- name: b\n  old_name: simple'));
  applyRenames(state, renamesOf(old, renamed, state), {}, {});
  expect(state.builds.map((b) => b.job)).toEqual(['b', 'b']);
  expect(renamesOf(renamed, renamed, state)).toEqual({ jobs: [], resources: [] });
});

test('a chain of renames goes from its end; a swap is refused as Concourse refuses it', () => {
  const two = (a: string, b: string, oldA = '', oldB = '') => `
resources:
- {name: r, type: mock, source: {}}
jobs:
- {name: ${a}, ${oldA && `old_name: ${oldA}, `}plan: [{get: r}]}
- {name: ${b}, ${oldB && `old_name: ${oldB}, `}plan: [{get: r}]}
`;
  const old = compile(two('a', 'b'));
  const state = emptyPipelineInput(old).state;
  state.counters = { a: 3, b: 7 };
  const chain = renamesOf(old, compile(two('b', 'c', 'a', 'b')), state);
  expect(chain.jobs).toEqual([
    { from: 'b', to: 'c' },
    { from: 'a', to: 'b' },
  ]);
  applyRenames(state, chain, {}, {});
  // b numbers on past 7: build-p:b:1..7 are c's builds now, under their ids.
  expect(state.counters).toEqual({ a: 3, b: 7, c: 7 });
  // b is a job's name now: its builds from before the chain are no longer found under it.
  expect(state.renamed?.jobs).toEqual({ a: 'b' });

  expect(() => renamesOf(old, compile(two('b', 'a', 'a', 'b')), emptyPipelineInput(old).state)).toThrow(
    'job name swapping is not supported at this time (old_name: a → b, b → a)',
  );
});

test('a job that takes a name whose builds the pipeline kept (the job left the config) drops them, as Concourse deletes that inactive job', () => {
  const old = compile(file('simple', 'repo'));
  const state = stateWithHistory();
  state.counters.gone = 9;
  state.builds.push({ job: 'gone', number: 9, status: 'failed', manual: false, inputs: {} });
  applyRenames(
    state,
    renamesOf(old, compile(file('gone', 'repo').replace('- name: gone', '- name: gone\n  old_name: simple')), state),
    {},
    {},
  );
  expect(state.builds.map((b) => `${b.job} ${buildWorkflowId('p', b)}`)).toEqual(['gone build-p:simple:1', 'gone build-p:simple:2']);
  // Numbered on past the dropped builds: build-p:gone:9 is taken.
  expect(state.counters.gone).toBe(9);
});
