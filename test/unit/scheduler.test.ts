// Concourse's scheduling rules as pure code: triggers, passed, every, pinning, serial, pause.
import type { CompiledPlan } from '../../schemas/compiled';
import { compilePipeline, type JobInput, type PipelineConfig, type PipelineJob } from '../../schemas/pipeline';
import { emptyPipelineInput } from '../../schemas/pipeline-api';
import {
  createBuild,
  createRerun,
  finishBuild,
  recordVersions,
  resetChangedResources,
  resolveInputs,
  resourcesToCheck,
  saveOutput,
  schedule,
  setByNewer,
  type SchedulerState,
} from '../../workflows/scheduler';

const plan = { name: 'j', source: 'p.yml', plan: { kind: 'do', id: 'plan', steps: [] } } as unknown as CompiledPlan;
const input = (resource: string, extra: Partial<JobInput> = {}): JobInput => ({
  name: resource,
  resource,
  trigger: true,
  passed: [],
  version: 'latest',
  ...extra,
});
const job = (name: string, inputs: JobInput[], extra: Partial<PipelineJob> = {}): PipelineJob => ({
  name,
  plan,
  inputs,
  maxInFlight: undefined,
  serialGroups: [],
  disableManualTrigger: false,
  ...extra,
});
function pipeline(jobs: PipelineJob[], resources = ['repo', 'other']): { config: PipelineConfig; state: SchedulerState } {
  const config: PipelineConfig = {
    name: 'p',
    text: '',
    jobs,
    resources: resources.map((name) => ({ name, ref: { name, type: { kind: 'unknown', name: 'x' }, source: {} }, checkEveryMs: 1000 })),
  };
  return { config, state: emptyPipelineInput(config).state };
}
const v = (ref: string) => ({ ref });
const started = (jobs: ReturnType<typeof schedule>) =>
  jobs.map(
    (b) =>
      `${b.job}#${b.number}:${Object.values(b.inputs)
        .map((i) => i.version.ref)
        .join(',')}`,
  );

test('a new version of a trigger input starts one build; the same version none', () => {
  const { config, state } = pipeline([job('unit', [input('repo')])]);
  expect(schedule(config, state)).toEqual([]);
  recordVersions(state, 'repo', [v('a')]);
  expect(started(schedule(config, state))).toEqual(['unit#1:a']);
  expect(schedule(config, state)).toEqual([]);
  finishBuild(state, 'unit', 1, 'succeeded');
  expect(schedule(config, state)).toEqual([]);
  expect(recordVersions(state, 'repo', [v('a'), v('b')])).toBe(1);
  expect(started(schedule(config, state))).toEqual(['unit#2:b']);
});

test('trigger: false inputs do not start builds, but a manual trigger does', () => {
  const { config, state } = pipeline([job('unit', [input('repo', { trigger: false })])]);
  recordVersions(state, 'repo', [v('a')]);
  expect(schedule(config, state)).toEqual([]);
  createBuild(state, 'unit', true);
  expect(started(schedule(config, state))).toEqual(['unit#1:a']);
});

test('passed: only versions that went through a succeeded build upstream, together', () => {
  const { config, state } = pipeline([
    job('unit', [input('repo'), input('other')]),
    job('publish', [input('repo', { passed: ['unit'] }), input('other', { passed: ['unit'] })]),
  ]);
  recordVersions(state, 'repo', [v('a')]);
  recordVersions(state, 'other', [v('x')]);
  expect(started(schedule(config, state))).toEqual(['unit#1:a,x']);
  recordVersions(state, 'repo', [v('b')]);
  // publish waits for unit #1; unit #2 waits for nothing.
  expect(started(schedule(config, state))).toEqual(['unit#2:b,x']);
  finishBuild(state, 'unit', 2, 'failed');
  expect(schedule(config, state)).toEqual([]);
  finishBuild(state, 'unit', 1, 'succeeded');
  expect(started(schedule(config, state))).toEqual(['publish#1:a,x']);
  // Versions that went through separate builds are not "together".
  recordVersions(state, 'other', [v('y')]);
  expect(started(schedule(config, state))).toEqual(['unit#3:b,y']);
  expect(resolveInputs(config.jobs[1], config, state)).toMatchObject({ ok: true });
});

test("passed: the versions a build's puts made count as its outputs, as Concourse's successful_build_outputs", () => {
  const { config, state } = pipeline(
    [job('build', [input('repo')]), job('deploy', [input('image', { passed: ['build'] })])],
    ['repo', 'image'],
  );
  recordVersions(state, 'repo', [v('a')]);
  // A version no build of `build` made or used is not a candidate.
  recordVersions(state, 'image', [v('old')]);
  expect(started(schedule(config, state))).toEqual(['build#1:a']);
  finishBuild(state, 'build', 1, 'succeeded', [{ resource: 'image', version: v('i1') }]);
  // The put's version is a version of the resource before any check finds it, and passed build.
  expect(state.versions.image.map((x) => x.version.ref)).toEqual(['old', 'i1']);
  expect(started(schedule(config, state))).toEqual(['deploy#1:i1']);
  // A failed build's put is a version of the resource, but did not pass.
  recordVersions(state, 'repo', [v('b')]);
  expect(started(schedule(config, state))).toEqual(['build#2:b']);
  finishBuild(state, 'build', 2, 'failed', [{ resource: 'image', version: v('i2') }]);
  expect(state.versions.image.map((x) => x.version.ref)).toEqual(['old', 'i1', 'i2']);
  expect(schedule(config, state)).toEqual([]);
  // A check that later reports the put's version does not record it twice.
  expect(recordVersions(state, 'image', [v('i1'), v('i2')])).toBe(0);
});

test("passed: the newest upstream build's versions first, its outputs before its inputs (testflight's inputs_outputs.yml)", () => {
  const { config, state } = pipeline([
    job('pushing', [input('repo', { trigger: false })]),
    job('downstream', [input('repo', { passed: ['pushing'], trigger: false })]),
  ]);
  recordVersions(state, 'repo', [v('first'), v('second')]);
  createBuild(state, 'pushing', true);
  expect(started(schedule(config, state))).toEqual(['pushing#1:second']);
  // It got `second` and put `first`, a version the resource already had.
  finishBuild(state, 'pushing', 1, 'succeeded', [{ resource: 'repo', version: v('first') }]);
  createBuild(state, 'downstream', true);
  expect(started(schedule(config, state))).toEqual(['downstream#1:first']);
});

test("a put's version is saved when the put succeeds (SaveOutput): a build that then fails feeds gets, not passed", () => {
  const { config, state } = pipeline(
    [job('build', [input('repo')]), job('deploy', [input('image', { passed: ['build'] })]), job('scan', [input('image')])],
    ['repo', 'image'],
  );
  recordVersions(state, 'repo', [v('a')]);
  expect(started(schedule(config, state))).toEqual(['build#1:a']);
  // The put's signal arrives while the build runs: a version at once, twice the same is one.
  expect(saveOutput(state, 'build', 1, { resource: 'image', version: v('i1') })).toBe(true);
  expect(saveOutput(state, 'build', 1, { resource: 'image', version: v('i1') })).toBe(true);
  expect(state.versions.image).toEqual([{ seq: 1, version: v('i1') }]);
  expect(state.builds.find((b) => b.job === 'build')?.outputs).toEqual([{ resource: 'image', seq: 1, version: v('i1') }]);
  // A job that gets it without passed triggers on it; deploy waits for build to succeed.
  expect(started(schedule(config, state))).toEqual(['scan#1:i1']);
  finishBuild(state, 'build', 1, 'failed');
  expect(schedule(config, state)).toEqual([]);
  expect(resolveInputs(config.jobs[1], config, state)).toMatchObject({ ok: false, reason: 'image: no version of image passed build' });
  // The same put in a build that succeeds passes; its result listing the put again adds nothing.
  recordVersions(state, 'repo', [v('b')]);
  expect(started(schedule(config, state))).toEqual(['build#2:b']);
  saveOutput(state, 'build', 2, { resource: 'image', version: v('i2') });
  finishBuild(state, 'build', 2, 'succeeded', [{ resource: 'image', version: v('i2') }]);
  expect(state.builds.find((b) => b.number === 2 && b.job === 'build')?.outputs).toHaveLength(1);
  expect(started(schedule(config, state))).toEqual(['deploy#1:i2', 'scan#2:i2']);
  // A build the state does not hold (the pipeline was destroyed and set again) records nothing.
  expect(saveOutput(state, 'build', 99, { resource: 'image', version: v('i3') })).toBe(false);
  expect(state.versions.image.map((x) => x.version.ref)).toEqual(['i1', 'i2']);
});

test('passed: may name a job that only puts the resource (Concourse: the job interacts with it), not one that never uses it', () => {
  const text = (upstream: string) => `
resources:
- {name: src, type: time, source: {interval: 1h}}
- {name: image, type: time, source: {interval: 1h}}
jobs:
- name: build
  plan: [{get: src}, {put: image}]
- name: lint
  plan: [{get: src}]
- name: deploy
  plan: [{get: image, passed: [${upstream}]}]
`;
  expect(compilePipeline({ name: 'p', text: text('build'), file: 'p.yml' }).jobs[2].inputs[0].passed).toEqual(['build']);
  expect(() => compilePipeline({ name: 'p', text: text('lint'), file: 'p.yml' })).toThrow(
    'job deploy: get image is passed: [lint], but job lint does not get or put resource image',
  );
});

test("check_timeout: the resource's, else its resource type's, else 1h; a bad one is reported with its line", () => {
  const text = (extra: string) => `
resource_types:
- {name: slow, type: registry-image, source: {repository: slow-resource}, check_timeout: 5m}
resources:
- {name: a, type: time, source: {interval: 1h}}
- {name: b, type: slow, source: {}}
- {name: c, type: slow, source: {}, check_timeout: ${extra}}
jobs:
- name: j
  plan: [{get: a}, {get: b}, {get: c}]
`;
  const config = compilePipeline({ name: 'p', text: text('30s'), file: 'p.yml' });
  expect(config.resources.map((r) => [r.name, r.checkTimeoutMs])).toEqual([
    ['a', 3_600_000],
    ['b', 300_000],
    ['c', 30_000],
  ]);
  expect(() => compilePipeline({ name: 'p', text: text('0s'), file: 'p.yml' })).toThrow(
    'p.yml:7:52: resources[2].check_timeout: check_timeout must be longer than 0, got `0s`',
  );
});

test('version: every gives each version its own build, oldest first', () => {
  const { config, state } = pipeline([job('each', [input('repo', { version: 'every' })], { maxInFlight: 1 })]);
  recordVersions(state, 'repo', [v('a')]);
  expect(started(schedule(config, state))).toEqual(['each#1:a']);
  recordVersions(state, 'repo', [v('b'), v('c')]);
  expect(schedule(config, state)).toEqual([]);
  finishBuild(state, 'each', 1, 'succeeded');
  expect(started(schedule(config, state))).toEqual(['each#2:b']);
  finishBuild(state, 'each', 2, 'succeeded');
  expect(started(schedule(config, state))).toEqual(['each#3:c']);
});

test('pinning chooses the version; a pin to a version the job never used triggers it', () => {
  const { config, state } = pipeline([job('unit', [input('repo')])]);
  recordVersions(state, 'repo', [v('a'), v('b')]);
  expect(started(schedule(config, state))).toEqual(['unit#1:b']);
  finishBuild(state, 'unit', 1, 'succeeded');
  state.pins.repo = v('a');
  expect(started(schedule(config, state))).toEqual(['unit#2:a']);
  finishBuild(state, 'unit', 2, 'succeeded');
  state.pins.repo = v('zz');
  expect(resolveInputs(config.jobs[0], config, state)).toMatchObject({ ok: false, reason: expect.stringContaining('pinned version') });
});

test('a disabled version is given to no build (latest, every, passed), but a pin of it is to a get without passed', () => {
  const { config, state } = pipeline([
    job('unit', [input('repo')]),
    job('each', [input('repo', { version: 'every' })], { maxInFlight: 1 }),
    job('publish', [input('repo', { passed: ['unit'] })]),
  ]);
  recordVersions(state, 'repo', [v('a'), v('b'), v('c')]);
  state.disabled = { repo: [3] };
  expect(started(schedule(config, state))).toEqual(['unit#1:b', 'each#1:b']);
  finishBuild(state, 'unit', 1, 'succeeded');
  finishBuild(state, 'each', 1, 'succeeded');
  // every: the next enabled version after the newest used, none newer: that one again.
  state.disabled = { repo: [1, 3] };
  expect(resolveInputs(config.jobs[1], config, state)).toMatchObject({ ok: true, inputs: { repo: { seq: 2 } } });
  // passed: a disabled version that went through upstream is skipped.
  expect(started(schedule(config, state))).toEqual(['publish#1:b']);
  finishBuild(state, 'publish', 1, 'succeeded');
  state.disabled = { repo: [2] };
  expect(resolveInputs(config.jobs[2], config, state)).toMatchObject({ ok: false, reason: 'repo: no version of repo passed unit' });
  state.disabled = { repo: [1, 2, 3] };
  expect(resolveInputs(config.jobs[0], config, state)).toEqual({
    ok: false,
    reason: 'repo: every version of repo is disabled (enable-resource-version)',
  });
  // Concourse's pinned resolver takes a pinned version whether or not it is disabled; its group resolver (passed) does not.
  state.pins.repo = v('b');
  expect(resolveInputs(config.jobs[0], config, state)).toMatchObject({ ok: true, inputs: { repo: { seq: 2 } } });
  expect(resolveInputs(config.jobs[2], config, state)).toMatchObject({
    ok: false,
    reason: expect.stringContaining('pinned version {"ref":"b"} of repo is disabled'),
  });
});

test('rerun-build: the rerun gets the versions of the build it reruns, goes before newer pending builds, and waits its turn', () => {
  const { config, state } = pipeline([job('unit', [input('repo', { trigger: false })], { maxInFlight: 1 })]);
  recordVersions(state, 'repo', [v('a')]);
  createBuild(state, 'unit', true);
  expect(started(schedule(config, state))).toEqual(['unit#1:a']);
  finishBuild(state, 'unit', 1, 'failed');
  recordVersions(state, 'repo', [v('b'), v('c')]);
  state.disabled = { repo: [1] };
  createBuild(state, 'unit', true);
  expect(started(schedule(config, state))).toEqual(['unit#2:c']);
  createBuild(state, 'unit', true);
  // #4 reruns #1 and goes before #3 (Concourse's COALESCE(rerun_of, id)); max_in_flight holds both.
  const rerun = createRerun(state, state.builds[0]);
  expect(rerun).toMatchObject({ number: 4, rerunOf: 1, status: 'pending', manual: false });
  expect(schedule(config, state)).toEqual([]);
  finishBuild(state, 'unit', 2, 'succeeded');
  expect(started(schedule(config, state))).toEqual(['unit#4:a']);
  finishBuild(state, 'unit', 4, 'succeeded');
  // A rerun of a rerun reruns the first build, and so goes before #3 too.
  expect(createRerun(state, rerun)).toMatchObject({ number: 5, rerunOf: 1, inputs: { repo: { version: v('a') } } });
  expect(started(schedule(config, state))).toEqual(['unit#5:a']);
  finishBuild(state, 'unit', 5, 'succeeded');
  expect(started(schedule(config, state))).toEqual(['unit#3:c']);
});

test("a resource's `version:` from a ((var)) pins it (testflight: -y pinned_resource_version={version: X}); null pins nothing", () => {
  const text = `
resources:
- {name: repo, type: git, source: {uri: x}, version: ((pin))}
jobs:
- name: j
  plan: [{get: repo, version: every, trigger: true}]
`;
  const pinned = compilePipeline({ name: 'p', text, file: 'p.yml', vars: { pin: { ref: 'b' } } });
  expect(pinned.resources[0].pinned).toEqual({ ref: 'b' });
  const state = emptyPipelineInput(pinned).state;
  recordVersions(state, 'repo', [v('a'), v('b'), v('c')]);
  expect(started(schedule(pinned, state))).toEqual(['j#1:b']);
  expect(compilePipeline({ name: 'p', text, file: 'p.yml', vars: { pin: null } }).resources[0].pinned).toBeUndefined();
});

test('paused pipelines and jobs start nothing; max_in_flight and serial_groups hold builds back', () => {
  const { config, state } = pipeline([
    job('a', [input('repo')], { maxInFlight: 1, serialGroups: ['g'] }),
    job('b', [input('repo')], { maxInFlight: 1, serialGroups: ['g'] }),
  ]);
  recordVersions(state, 'repo', [v('1')]);
  state.paused = true;
  expect(schedule(config, state)).toEqual([]);
  state.paused = false;
  state.pausedJobs = ['b'];
  expect(started(schedule(config, state))).toEqual(['a#1:1']);
  state.pausedJobs = [];
  expect(schedule(config, state)).toEqual([]);
  finishBuild(state, 'a', 1, 'succeeded');
  expect(started(schedule(config, state))).toEqual(['b#1:1']);
});

test('serial_groups: a pending build that cannot start (no inputs, paused job) holds nobody; one that can goes first', () => {
  // testflight's serial-groups(-inputs-updated).yml: some-pending-job's resource has no version yet.
  const { config, state } = pipeline([
    job('pending', [input('other', { trigger: false })], { maxInFlight: 1, serialGroups: ['g'] }),
    job('passing', [input('repo', { trigger: false })], { maxInFlight: 1, serialGroups: ['g'] }),
  ]);
  createBuild(state, 'pending', true);
  createBuild(state, 'passing', true);
  recordVersions(state, 'repo', [v('1')]);
  // Histories from before keep the old rule: the first pending build held the group.
  expect(schedule(config, state, { anyPendingHoldsGroup: () => true })).toEqual([]);
  expect(started(schedule(config, state))).toEqual(['passing#1:1']);
  finishBuild(state, 'passing', 1, 'succeeded');
  // Now both jobs resolve: the older pending build goes first, the newer waits for it.
  recordVersions(state, 'other', [v('o')]);
  createBuild(state, 'passing', true);
  expect(started(schedule(config, state))).toEqual(['pending#1:o']);
  expect(schedule(config, state)).toEqual([]);
  finishBuild(state, 'pending', 1, 'succeeded');
  expect(started(schedule(config, state))).toEqual(['passing#2:1']);
  finishBuild(state, 'passing', 2, 'succeeded');
  // A paused job's pending build holds nobody either (Concourse: `j.paused = false`).
  createBuild(state, 'pending', true);
  createBuild(state, 'passing', true);
  state.pausedJobs = ['pending'];
  expect(started(schedule(config, state))).toEqual(['passing#3:1']);
});

test('trigger-job: checks its inputs without passed and unpinned first, and starts only once they are checked', () => {
  const { config, state } = pipeline(
    [
      job('up', [input('repo')]),
      job('j', [input('repo', { passed: ['up'] }), input('other', { trigger: false }), input('pinned'), input('again', { name: 'x' })]),
    ],
    ['repo', 'other', 'pinned', 'again'],
  );
  state.pins.pinned = v('p');
  // Concourse's createChecks/ResourcesChecked: not `repo` (passed), not `pinned`; each resource once.
  expect(resourcesToCheck(config.jobs[1], config, state)).toEqual(['other', 'again']);
  const build = createBuild(state, 'up', true);
  build.checks = ['repo'];
  recordVersions(state, 'repo', [v('1')]);
  // The check found a new version of a trigger input: the pending trigger-job build takes it,
  // no second build is made for it (EnsurePendingBuildExists: not while one is pending).
  expect(schedule(config, state)).toEqual([]);
  expect(state.builds.map((b) => b.number)).toEqual([1]);
  delete build.checks;
  expect(started(schedule(config, state))).toEqual(['up#1:1']);
  expect(schedule(config, state)).toEqual([]);
  // Histories from before made the second build.
  finishBuild(state, 'up', 1, 'succeeded');
  createBuild(state, 'up', true).checks = ['repo'];
  recordVersions(state, 'repo', [v('2')]);
  expect(started(schedule(config, state, { triggerBesideManual: () => true }))).toEqual([]);
  expect(state.builds.filter((b) => b.status === 'pending').map((b) => `${b.number}${b.manual ? 'm' : ''}`)).toEqual(['2m', '3']);
});

test('a resource whose source changed starts over: no build gets a version of the old source, none is disabled', () => {
  const { config, state } = pipeline([job('unit', [input('repo')])]);
  recordVersions(state, 'repo', [v('a'), v('b')]);
  expect(started(schedule(config, state))).toEqual(['unit#1:b']);
  finishBuild(state, 'unit', 1, 'succeeded');
  state.disabled = { repo: [1] };
  const next = {
    ...config,
    resources: config.resources.map((r) => (r.name === 'repo' ? { ...r, ref: { ...r.ref, source: { uri: 'new' } } } : r)),
  };
  expect(resetChangedResources(config, next, state)).toEqual(['repo']);
  expect(state.disabled).toEqual({});
  expect(resolveInputs(next.jobs[0], next, state)).toMatchObject({ ok: false });
  // The same version map from the new source is a new version (check order 3): it triggers.
  recordVersions(state, 'repo', [v('b')]);
  expect(state.versions.repo).toEqual([{ seq: 3, version: v('b') }]);
  expect(started(schedule(next, state))).toEqual(['unit#2:b']);
});

test('set_pipeline: a pipeline set by a newer build refuses an older one (ErrSetByNewerBuild); a person or the same build may set it', () => {
  const by = (job: string, number: number, startedAt: number) => ({ pipeline: 'p', job, number, startedAt });
  // Builds of one job: by number, whenever they started.
  expect(setByNewer(by('ci', 2, 100), by('ci', 1, 200))).toBe(true);
  expect(setByNewer(by('ci', 1, 200), by('ci', 2, 100))).toBe(false);
  expect(setByNewer(by('ci', 2, 100), by('ci', 2, 100))).toBe(false);
  // Builds of different jobs (or pipelines): by when they started, as Concourse's global build ids.
  expect(setByNewer(by('a', 1, 200), by('b', 9, 100))).toBe(true);
  expect(setByNewer(by('a', 9, 100), { ...by('a', 1, 200), pipeline: 'other' })).toBe(false);
  // A person's set (fly) clears the setter and is never refused.
  expect(setByNewer(undefined, by('ci', 1, 0))).toBe(false);
  expect(setByNewer(by('ci', 2, 0), undefined)).toBe(false);
});
