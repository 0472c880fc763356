// Concourse's refusals of a pipeline (atc/configvalidate/validate_test.go's cases, and the
// fan-in example of its documentation's get step), each at its file:line.
import { compilePipeline } from '../../schemas/pipeline';
import { groupGlob, pathMatch } from '../../schemas/pipeline-validate';

const R = 'resources:\n- {name: r, type: mock, source: {}}\n';
const compile = (text: string) => compilePipeline({ name: 'p', text, file: 'p.yml' });
const problems = (text: string): string[] => {
  try {
    compile(text);
    return [];
  } catch (err) {
    return (err as Error).message.split('\n');
  }
};
const chain = (passed: string[]) =>
  `${R}jobs:\n${passed.map((p, i) => `- {name: some-job-${i + 1}, plan: [{get: r, passed: ["${p}"]}]}`).join('\n')}\n`;

test("passed: globs match jobs as Go's path.Match does and become the jobs they match (the docs' fan-in example)", () => {
  const config = compile(`${R}jobs:
- {name: lvl-1-firewall, plan: [{get: r}]}
- {name: lvl-2-unit, plan: [{get: r, passed: [lvl-1-firewall]}]}
- {name: lvl-2-integration, plan: [{get: r, passed: [lvl-1-firewall]}]}
- {name: lvl-3-production, plan: [{get: r, passed: [lvl-2-*]}]}
`);
  expect(config.jobs.map((j) => j.inputs[0].passed)).toEqual([
    [],
    ['lvl-1-firewall'],
    ['lvl-1-firewall'],
    ['lvl-2-unit', 'lvl-2-integration'],
  ]);
  expect(problems(`${R}jobs:\n- {name: a, plan: [{get: r}]}\n- {name: b, plan: [{get: r, passed: [bogus-*]}]}\n`)).toEqual([
    'p.yml:5:10: jobs[1].name: job b: get r is passed: [bogus-*], but no job matches bogus-*',
  ]);
});

test("path.Match's and gobwas/glob's syntax: classes, negation, escapes, braces only in groups; a malformed pattern matches nothing", () => {
  expect(pathMatch('some-j*', 'some-job')).toBe(true);
  expect(pathMatch('job-?', 'job-1')).toBe(true);
  expect(pathMatch('job-[0-4]', 'job-5')).toBe(false);
  expect(pathMatch('job-[^0-4]', 'job-5')).toBe(true);
  expect(pathMatch('a\\*', 'a*')).toBe(true);
  expect(pathMatch('a\\*', 'ab')).toBe(false);
  expect(pathMatch('{a,b}', 'a')).toBe(false);
  expect(pathMatch('job-[', 'job-[')).toBe(false);
  expect(pathMatch('a.b', 'axb')).toBe(false);
  expect(groupGlob('{unit,lint}-*')?.test('lint-go')).toBe(true);
  expect(groupGlob('[!a]*')?.test('build')).toBe(true);
  expect(groupGlob('[!a]*')?.test('apply')).toBe(false);
  expect(groupGlob('a[')).toBeUndefined();
  expect(groupGlob('{a,b')).toBeUndefined();
});

test('a cycle of passed: constraints is refused at the job Concourse names: self, through several jobs, through a glob', () => {
  expect(problems(chain(['some-job-1']))).toEqual([
    "p.yml:4:10: jobs[0].name: the pipeline's passed: constraints contain a cycle that starts at job some-job-1: no build of it could ever start",
  ]);
  expect(problems(chain(['some-job-2', 'some-job-3', 'some-job-4', 'some-job-2']))).toEqual([
    "p.yml:5:10: jobs[1].name: the pipeline's passed: constraints contain a cycle that starts at job some-job-2: no build of it could ever start",
  ]);
  expect(problems(chain(['some-job-2', 'some-job-3', 'some-job-4', 'some-job-*']))).toEqual([
    "p.yml:4:10: jobs[0].name: the pipeline's passed: constraints contain a cycle that starts at job some-job-1: no build of it could ever start",
  ]);
  // A job with several upstreams that share one is no cycle.
  expect(problems(chain(['', 'some-job-1', 'some-job-1', 'some-job-2']).replace('passed: [""]', 'passed: []'))).toEqual([]);
});

test('groups: every job in one, each pattern matching a job, known resources, one group per name', () => {
  const jobs = 'jobs:\n- {name: unit, plan: [{get: r}]}\n- {name: lint, plan: [{get: r}]}\n- {name: deploy, plan: [{get: r}]}\n';
  expect(problems(`${R}groups:\n- {name: test, jobs: ["{unit,lint}"], resources: [r]}\n- {name: ship, jobs: [dep*]}\n${jobs}`)).toEqual([]);
  expect(
    problems(`${R}groups:\n- {name: test, jobs: [unit, nope*, "a["], resources: [gone]}\n- {name: test, jobs: [lint]}\n${jobs}`),
  ).toEqual([
    "p.yml:4:29: groups[0].jobs[1]: no jobs match 'nope*' for group test",
    "p.yml:4:36: groups[0].jobs[2]: invalid glob expression 'a[' for group test",
    'p.yml:4:55: groups[0].resources[0]: group test has unknown resource gone',
    'p.yml:5:10: groups[1].name: a second group named test (groups[0] is the first): duplicate names are not allowed',
    'p.yml:9:10: jobs[2].name: job deploy belongs to no group (with groups:, every job needs one)',
  ]);
});

test('resources used by no job, or named twice, and resource types without a type or named twice, are refused', () => {
  expect(
    problems(`${R}- {name: spare, type: mock, source: {}}\n- {name: r, type: mock, source: {}}\njobs:\n- {name: j, plan: [{put: r}]}\n`),
  ).toEqual([
    'p.yml:3:10: resources[1].name: resource spare is not used: no job gets or puts it (Concourse refuses unused resources)',
    'p.yml:4:10: resources[2].name: resources[0] and resources[2] have the same name (r)',
  ]);
  expect(
    problems(
      `resource_types:\n- {name: t, type: registry-image, source: {repository: a}}\n- {name: t, type: registry-image, source: {repository: b}}\n- {name: u, source: {}}\n${R}jobs:\n- {name: j, plan: [{get: r}]}\n`,
    ),
  ).toEqual([
    'p.yml:3:10: resource_types[1].name: resource_types[0] and resource_types[1] have the same name (t)',
    'p.yml:4:3: resource_types[2]: resource_types[2] (u) has no type',
  ]);
});

test('a pipeline needs a job; build_log_retention is not negative nor given twice; display.background_image is an http(s) or relative URL', () => {
  expect(problems('jobs: []\n')).toEqual(['p.yml:1:7: jobs: a pipeline must contain at least one job']);
  const job = (extra: string) => `${R}jobs:\n- {name: j, ${extra}, plan: [{get: r}]}\n`;
  expect(problems(job('build_log_retention: {builds: 10, days: -1, minimum_succeeded_builds: 3}'))).toEqual([
    'p.yml:4:53: jobs[0].build_log_retention.days: negative build_log_retention.days: -1',
  ]);
  expect(problems(job('build_log_retention: {builds: 2, minimum_succeeded_builds: 3}'))).toEqual([
    'p.yml:4:72: jobs[0].build_log_retention.minimum_succeeded_builds: build_log_retention.minimum_succeeded_builds (3) is greater than build_log_retention.builds (2)',
  ]);
  expect(problems(job('build_log_retention: {builds: 2}, build_logs_to_retain: 5'))).toEqual([
    "p.yml:4:13: jobs[0].build_log_retention: a job can't use both build_log_retention and build_logs_to_retain",
  ]);
  const display = (url: string) => `${R}display: {background_image: "${url}"}\njobs:\n- {name: j, plan: [{get: r}]}\n`;
  expect(problems(display('https://example.com/bg.png'))).toEqual([]);
  expect(problems(display('/public/bg.png'))).toEqual([]);
  expect(problems(display('://example.com'))).toEqual([
    'p.yml:3:29: display.background_image: background_image is not a valid URL: ://example.com',
  ]);
  expect(problems(display('ftp://example.com/bg.png'))).toEqual([
    "p.yml:3:29: display.background_image: background_image's scheme must be http, https or none (a relative URL), not ftp",
  ]);
});

test("an inline task config without platform is refused wherever its step is (Concourse's TaskConfig.Validate); a put's params are no step", () => {
  const file = `${R}jobs:
- name: j
  plan:
  - get: r
  - task: a
    config: {run: {path: x}}
  - in_parallel:
      steps:
      - try: {task: b, config: {run: {path: x}}}
      - task: c
        config: {platform: linux, run: {path: x}}
  - put: r
    params: {task: t, config: {run: {path: x}}}
  ensure: {task: d, config: {run: {path: x}}}
`;
  const missing = "missing 'platform': Concourse requires it in a task config (e.g. `platform: linux`)";
  expect(problems(file)).toEqual([
    `p.yml:8:13: jobs[0].plan[1].config: ${missing}`,
    `p.yml:11:32: jobs[0].plan[2].in_parallel.steps[0].try.config: ${missing}`,
    `p.yml:16:29: jobs[0].ensure.config: ${missing}`,
  ]);
});
