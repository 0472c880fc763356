import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compilePlan, describeStep, loadPlan, PlanError, stepKindOf, type Step, type TaskStep } from '../../schemas';

const compile = (text: string, opts: { job?: string; vars?: Record<string, unknown>; file?: string } = {}) =>
  compilePlan({ text, file: opts.file ?? 'ci/build.yml', job: opts.job, vars: opts.vars });

function planError(text: string, opts: { job?: string; vars?: Record<string, unknown> } = {}): PlanError {
  try {
    compile(text, opts);
  } catch (e) {
    if (e instanceof PlanError) return e;
    throw e;
  }
  throw new Error('expected a PlanError');
}

const only = (text: string, vars?: Record<string, unknown>): Step => compile(text, { vars }).plan.steps[0];

const taskDefaults = { params: {}, vars: {}, inputMapping: {}, outputMapping: {}, privileged: false };

describe('set_pipeline step', () => {
  it('compiles self or a name, the file, vars and var_files', () => {
    expect(
      only(
        `
plan:
- set_pipeline: self
  file: repo/ci/pipeline.yml
  vars: {branch: ((branch))}
  var_files: [repo/ci/vars.yml, repo/ci/more.yml]
`,
        { branch: 'main' },
      ),
    ).toEqual({
      kind: 'set_pipeline',
      id: 'plan.0',
      line: 3,
      pipeline: 'self',
      file: 'repo/ci/pipeline.yml',
      vars: { branch: 'main' },
      varFiles: ['repo/ci/vars.yml', 'repo/ci/more.yml'],
    });
    expect(only('plan:\n- set_pipeline: booklit\n  file: r/p.yml\n')).toMatchObject({ pipeline: 'booklit', vars: {}, varFiles: [] });
  });
});

describe('task step', () => {
  it('compiles every key', () => {
    const step = only(`
plan:
- task: unit
  config:
    run: {path: make}
    params: {FROM_CONFIG: x}
  params: {N: 1, OBJ: {a: 1}, NUL: null}
  vars: {v: [1]}
  input_mapping: {src: repo}
  output_mapping: {out: built}
  image: golang-image
  privileged: true
  hermetic: true
  container_limits: {cpu: 2, memory: 256M}
`);
    expect(step).toEqual({
      id: 'plan.0',
      line: 3,
      kind: 'task',
      task: 'unit',
      config: { inputs: [], outputs: [], caches: [], params: { FROM_CONFIG: 'x' }, run: { path: 'make', args: [] } },
      params: { N: '1', OBJ: '{"a":1}', NUL: '' },
      vars: { v: [1] },
      inputMapping: { src: 'repo' },
      outputMapping: { out: 'built' },
      image: 'golang-image',
      privileged: true,
      containerLimits: { cpu: 2, memory: 256 * 1024 ** 2 },
    });
  });
  it('accepts file alone', () => {
    expect(only('plan: [{task: t, file: a/t.yml}]')).toEqual({
      id: 'plan.0',
      line: 1,
      kind: 'task',
      task: 't',
      file: 'a/t.yml',
      ...taskDefaults,
    });
  });
  it('needs config or file', () => {
    expect(planError('plan:\n- task: t\n').message).toBe('ci/build.yml:2:3: plan[0]: task step `t` needs `config` or `file`');
  });
});

describe('step kinds and ids', () => {
  const plan = compile(`
plan:
- load_var: version
  file: out/version
  format: trim
  reveal: true
- do:
  - task: a
    file: a.yml
  - try:
      task: b
      file: b.yml
- in_parallel:
  - task: c
    file: c.yml
- in_parallel:
    limit: 2
    fail_fast: true
    steps:
    - task: d
      file: d.yml
`).plan;

  it('numbers steps by position', () => {
    const ids: string[] = [];
    const walk = (s: Step) => {
      ids.push(s.id);
      if (s.kind === 'do' || s.kind === 'in_parallel') s.steps.forEach(walk);
      if (s.kind === 'try') walk(s.step);
    };
    walk(plan);
    expect(ids).toEqual([
      'plan',
      'plan.0',
      'plan.1',
      'plan.1.do.0',
      'plan.1.do.1',
      'plan.1.do.1.try',
      'plan.2',
      'plan.2.in_parallel.0',
      'plan.3',
      'plan.3.in_parallel.0',
    ]);
    ids.forEach((id) => expect(id).toMatch(/^[A-Za-z0-9_.-]+$/));
  });
  it('compiles load_var', () => {
    expect(plan.steps[0]).toEqual({
      id: 'plan.0',
      line: 3,
      kind: 'load_var',
      var: 'version',
      file: 'out/version',
      format: 'trim',
      reveal: true,
    });
  });
  it('compiles both in_parallel forms', () => {
    expect(plan.steps[2]).toMatchObject({ kind: 'in_parallel', failFast: false, line: 13 });
    expect(plan.steps[2]).not.toHaveProperty('limit');
    expect(plan.steps[3]).toMatchObject({ kind: 'in_parallel', limit: 2, failFast: true, line: 16 });
    expect((plan.steps[3] as { steps: Step[] }).steps[0]).toMatchObject({ task: 'd', line: 20 });
  });
  it('records lines', () => {
    expect(plan.steps[1]).toMatchObject({ kind: 'do', line: 7 });
    expect(plan.line).toBe(3);
  });
  it('describes steps', () => {
    expect(describeStep(plan.steps[0])).toBe('load_var version');
    expect(describeStep((plan.steps[1] as { steps: Step[] }).steps[0])).toBe('task a');
    expect(describeStep(plan.steps[2])).toBe('in_parallel');
    expect(stepKindOf(plan.steps[1])).toBe('do');
    expect(stepKindOf({ get: 'repo' })).toBe('get');
    expect(stepKindOf({ nothing: 1 })).toBeUndefined();
  });
});

describe('modifiers and hooks', () => {
  it('compiles timeout, attempts, tags, across and hooks', () => {
    const step = only(`
plan:
- task: t
  file: t.yml
  timeout: 1h30m
  attempts: 3
  tags: [gpu]
  across:
  - var: go
    values: ["1.21", "1.22"]
    max_in_flight: all
  - var: os
    values: [linux]
  fail_fast: true
  on_success: {task: ok, file: ok.yml}
  on_failure: {task: fail, file: fail.yml}
  on_abort: {task: abort, file: abort.yml}
  on_error: {task: err, file: err.yml}
  ensure: {do: []}
`);
    expect(step).toMatchObject({
      timeoutMs: 5_400_000,
      attempts: 3,
      tags: ['gpu'],
      across: {
        vars: [
          { var: 'go', values: ['1.21', '1.22'], maxInFlight: 'all' },
          { var: 'os', values: ['linux'], maxInFlight: 1 },
        ],
        failFast: true,
      },
      hooks: {
        on_success: { id: 'plan.0.on_success', task: 'ok' },
        on_failure: { id: 'plan.0.on_failure', task: 'fail' },
        on_abort: { id: 'plan.0.on_abort', task: 'abort' },
        on_error: { id: 'plan.0.on_error', task: 'err' },
        ensure: { id: 'plan.0.ensure', kind: 'do', steps: [] },
      },
    });
  });
  it('leaves unset modifiers out', () => {
    expect(Object.keys(only('plan: [{do: []}]')).sort()).toEqual(['id', 'kind', 'line', 'steps']);
  });
  it('attaches job-level hooks to the root do', () => {
    const plan = compile('plan: []\non_failure: {task: f, file: f.yml}\nensure: {task: e, file: e.yml}\nserial: true\npublic: true\n').plan;
    expect(plan.hooks?.on_failure).toMatchObject({ id: 'plan.on_failure', task: 'f', line: 2 });
    expect(plan.hooks?.ensure).toMatchObject({ id: 'plan.ensure', task: 'e' });
  });
  it('rejects bad modifiers all at once', () => {
    const err = planError(`
plan:
- do: []
  timeout: soon
  attempts: 0
  tags: gpu
  fail_fast: true
- do: []
  across: [{var: x, values: 3, max_in_flight: 0}]
`);
    expect(err.message.split('\n')).toEqual([
      'ci/build.yml:4:12: plan[0].timeout: invalid duration `soon`: expected a Go duration like "90s", "1h30m", "500ms" or "1.5h"',
      'ci/build.yml:5:13: plan[0].attempts: attempts must be >= 1',
      'ci/build.yml:6:9: plan[0].tags: expected a list, got the string "gpu"',
      'ci/build.yml:9:29: plan[1].across[0].values: `values` must be a list, or a local var like ((.:list)) set by load_var',
      'ci/build.yml:9:47: plan[1].across[0].max_in_flight: max_in_flight must be a positive integer or "all"',
    ]);
  });
  it('rejects fail_fast without across', () => {
    expect(planError('plan:\n- do: []\n  fail_fast: true\n').message).toBe(
      'ci/build.yml:3:3: plan[0].fail_fast: `fail_fast` applies to `across`; this step has no `across`',
    );
  });
});

describe('errors', () => {
  it("refuses what Concourse's step validator refuses: a second get of a name, a var set twice in one scope, a task with file and config", () => {
    const messages = (text: string) => planError(text).issues.map((i) => `${i.line}:${i.column} ${i.message}`);
    const r = 'resources:\n- {name: r, type: mock, source: {}}\n- {name: s, type: mock, source: {}}\n';
    expect(
      messages(`${r}jobs:\n- name: j\n  plan:\n  - get: r\n  - {get: x, resource: r}\n  - {get: x, resource: s}\n  - try: {get: r}\n`),
    ).toEqual([
      '9:11 a second get named `x`: each get makes the artifact of its name; name one differently (get: other, resource: s)',
      '10:16 a second get named `r`: each get makes the artifact of its name; name one differently (get: other, resource: r)',
    ]);
    expect(
      messages(
        'plan:\n- {load_var: v, file: a/v}\n- in_parallel: [{load_var: v, file: a/w}]\n- {across: [{var: w, values: [1]}], load_var: w, file: a/x}\n',
      ),
    ).toEqual([
      '3:28 the var `v` is set twice here (by an earlier load_var or the enclosing across): name one differently',
      '4:47 the var `w` is set twice here (by an earlier load_var or the enclosing across): name one differently',
    ]);
    // A load_var inside an across has a scope of its own: it may set what the job's scope has.
    expect(() => compile('plan:\n- {load_var: v, file: a/v}\n- {across: [{var: w, values: [1]}], load_var: v, file: a/x}\n')).not.toThrow();
    expect(messages('plan:\n- {task: t, file: a/t.yml, config: {run: {path: "true"}}}\n')).toEqual([
      '2:13 task step `t` takes one of `file` or `config`, not both',
    ]);
  });
  it('names file, line, column, YAML path and the nearest key', () => {
    const err = planError(`
plan:
- task: a
  file: a.yml
- in_parallel:
    steps:
    - task: b
      file: b.yml
      parms: {X: 1}
`);
    expect(err.issues).toEqual([
      {
        file: 'ci/build.yml',
        line: 9,
        column: 7,
        path: 'plan[1].in_parallel.steps[0].parms',
        message: 'unknown key `parms` in task step; did you mean `params`?',
      },
    ]);
    expect(err.message).toBe(
      'ci/build.yml:9:7: plan[1].in_parallel.steps[0].parms: unknown key `parms` in task step; did you mean `params`?',
    );
  });
  it('reports every error of the file, in file order', () => {
    const err = planError(`
plan:
- tsk: a
- task: b
  do: []
- load_var: v
  file: f
  format: xml
- task: c
  config: {run: {path: x}, inputs: [{name: i}, {name: i}]}
- put: image
`);
    expect(err.message.split('\n')).toEqual([
      'ci/build.yml:3:3: plan[0]: a step needs one of task, do, in_parallel, try, load_var, get, put, set_pipeline; did you mean `task` instead of `tsk`?',
      'ci/build.yml:4:3: plan[1]: a step has exactly one of task, do, in_parallel, try, load_var, get, put, set_pipeline; this one has task and do',
      'ci/build.yml:8:11: plan[2].format: expected one of json, yaml, yml, trim, raw, got the string "xml"',
      'ci/build.yml:10:55: plan[3].config.inputs[1].name: duplicate input name `i`',
      "ci/build.yml:11:8: plan[4].put: no resource `image` in this file's `resources:`",
    ]);
  });
  it('refuses a YAML bomb (anchors of anchors) at once, and takes an anchor used hundreds of times', () => {
    const bomb = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 10; i++)
      bomb.push(
        `a${i}: &a${i} [${Array(10)
          .fill(`*a${i - 1}`)
          .join(', ')}]`,
      );
    const err = planError(`${bomb.join('\n')}\nplan:\n- task: t\n  config: {platform: linux, run: {path: echo, args: *a9}}\n`);
    expect(err.issues.map((i) => i.message)).toEqual([
      'invalid YAML: its aliases expand to more than 10000 copies (anchors of anchors, a YAML bomb?)',
    ]);
    const steps = Array.from({ length: 499 }, (_, i) => `- task: t${i + 1}\n  config: *config`).join('\n');
    const plan = compile(`plan:\n- task: t0\n  config: &config {platform: linux, run: {path: 'true'}}\n${steps}\n`);
    expect(plan.plan.kind === 'do' && plan.plan.steps).toHaveLength(500);
  });
  it('says where a merge key merges something other than a map, or a key is a map, and takes a merge of a map', () => {
    const err = planError('plan:\n- task: t\n  <<: 5\n  config: {platform: linux, run: {path: "true"}}\n');
    expect(err.message).toBe('ci/build.yml:3:3: invalid YAML: `<<` merges a map or an alias of one (or a list of them)');
    // A map as a key: refused where it is (the yaml library would stringify it with a warning on stderr).
    expect(planError('plan:\n- ? {a: 1}\n  : x\n  task: t\n').message).toBe(
      'ci/build.yml:2:5: invalid YAML: a key is a plain value, not a map or a list',
    );
    const plan = compile('plan:\n- task: t\n  config:\n    platform: linux\n    run:\n      <<: {path: "true"}\n');
    expect(plan.plan.kind === 'do' && plan.plan.steps[0]).toMatchObject({ config: { run: { path: 'true' } } });
  });
  it("says that a `run:` step is Concourse's prototype, not a task", () => {
    const err = planError(`
plan:
- run: some-message
  type: some-prototype
`);
    expect(err.issues.map((i) => i.message)).toEqual([
      "`run:` runs a prototype (Concourse's experimental `prototypes:`), which Causeway does not support; a command runs in a `task:` step, under its `config.run`",
    ]);
  });
  it('rejects a get of a resource the file does not declare, and what a set_pipeline step cannot do, wherever they are', () => {
    const err = planError(`
plan:
- in_parallel:
  - get: repo
  - do:
    - set_pipeline: self
      file: p.yml
      instance_vars: [branch, main]
    - set_pipeline: a/b
      file: p.yml
    - set_pipeline: other
`);
    expect(err.issues.map((i) => i.message)).toEqual([
      "no resource `repo` in this file's `resources:`",
      'expected a map, got a list',
      'pipeline name `a/b` is not allowed: use letters, digits, `-`, `_` and `.`, starting with a letter or digit',
      'missing required key `file` (a string)',
    ]);
    expect(err.issues[1].path).toBe('plan[0].in_parallel[1].do[0].instance_vars');
  });
  it("keeps a set_pipeline step's instance_vars, their local vars and credential refs for run time, as Concourse's", () => {
    const step = only(`
var_sources:
- {name: vs, type: dummy, config: {vars: {}}}
plan:
- across:
  - var: branch
    values: [main, feature-x]
  set_pipeline: pr
  file: p.yml
  instance_vars: {branch: ((.:branch)), token: ((vs:token)), n: 1}
`);
    expect(step).toMatchObject({
      kind: 'set_pipeline',
      pipeline: 'pr',
      instanceVars: { branch: '((.:branch))', token: '((vs:token))', n: 1 },
    });
  });
  it("leaves a set_pipeline name made by across to run time, as Concourse's docs set several pipelines", () => {
    const step = only(`
plan:
- across:
  - var: pipeline
    values: [hello-world, time-triggered]
  set_pipeline: ((.:pipeline))
  file: ci/pipelines/((.:pipeline)).yml
`);
    expect(step).toMatchObject({ kind: 'set_pipeline', pipeline: '((.:pipeline))', file: 'ci/pipelines/((.:pipeline)).yml' });
  });
  it('leaves a set_pipeline name, team and vars from a credential manager to run time, as Concourse evaluates them', () => {
    const step = only(`
var_sources:
- {name: vs, type: dummy, config: {vars: {}}}
plan:
- set_pipeline: ((vs:name))
  team: ((vs:team))
  file: ci/p.yml
  vars: {greeting: ((vs:greet))}
`);
    expect(step).toMatchObject({ kind: 'set_pipeline', pipeline: '((vs:name))', team: '((vs:team))', vars: { greeting: '((vs:greet))' } });
  });
  it('reports YAML syntax errors with a position', () => {
    const err = planError('plan:\n  - task: a\n  bad: [\n');
    expect(err.issues[0]).toMatchObject({ file: 'ci/build.yml', message: expect.stringMatching(/^invalid YAML/) });
    expect(err.issues[0].line).toBeGreaterThan(1);
  });
  it('rejects a file that is neither a job nor a pipeline', () => {
    expect(planError('- task: a\n').message).toMatch(/a plan file must be a map/);
    expect(planError('steps: []\n').message).toMatch(/unknown key `steps` in job/);
  });
  it('suggests a key inside a nested object', () => {
    expect(planError('plan:\n- task: a\n  config:\n    run: {path: x, arg: [1]}\n').message).toBe(
      'ci/build.yml:4:20: plan[0].config.run.arg: unknown key `arg` in `run`; did you mean `args`?',
    );
  });
});

describe('pipelines', () => {
  const pipeline = `
resources: [{name: repo, type: git, source: {uri: x}}]
resource_types: []
groups: []
display: {background_image: x}
jobs:
- name: lint
  plan: [{task: lint, file: ((missing_elsewhere))}]
- name: test
  serial: true
  plan:
  - task: unit
    file: t.yml
`;
  it('compiles the chosen job with paths from the document root', () => {
    const plan = compile(pipeline, { job: 'test' });
    expect(plan.name).toBe('test');
    expect(plan.plan.steps[0]).toMatchObject({ id: 'plan.0', task: 'unit', line: 12 });
  });
  it('asks for --job and lists the jobs', () => {
    expect(planError(pipeline).message).toMatch(/pass --job NAME.*\n?/);
    expect(planError(pipeline).message).toContain('(lint, test)');
  });
  it('runs the only job of a one-job pipeline without --job', () => {
    const one = `jobs:\n- name: only\n  plan:\n  - task: t\n    file: t.yml\n`;
    expect(compile(one).name).toBe('only');
  });
  it('suggests the nearest job name', () => {
    expect(planError(pipeline, { job: 'tst' }).message).toContain('no job `tst` in this pipeline; did you mean `test`?');
  });
  it('reports errors of the chosen job with its path', () => {
    expect(planError(pipeline.replace('file: t.yml', 'fle: t.yml'), { job: 'test' }).issues.map((i) => i.path)).toContain(
      'jobs[1].plan[0].fle',
    );
  });
  it('supports merge keys', () => {
    const plan = compile(
      `
anchors:
jobs:
- name: j
  plan:
  - task: a
    config: &cfg
      run: {path: make}
  - task: b
    config:
      <<: *cfg
      params: {X: y}
`.replace('anchors:\n', ''),
      { job: 'j' },
    );
    expect((plan.plan.steps[1] as TaskStep).config).toMatchObject({ run: { path: 'make' }, params: { X: 'y' } });
  });
  it('accepts unknown top-level keys, where pipelines keep YAML anchors, as Concourse does', () => {
    const plan = compile(
      `
shared:
  config: &cfg {platform: linux, run: {path: make}}
x-anything: 1
jobs:
- name: j
  plan:
  - {task: a, config: *cfg}
`,
      { job: 'j' },
    );
    expect((plan.plan.steps[0] as TaskStep).config).toMatchObject({ run: { path: 'make' } });
  });
  it('still rejects unknown keys inside jobs and steps', () => {
    const text = `
anchors: {}
jobs:
- name: j
  plan:
  - {task: a, config: {platform: linux, run: {path: make}}, colour: red}
`;
    expect(planError(text, { job: 'j' }).message).toContain('unknown key `colour` in task step');
    expect(planError(text.replace('  plan:', '  colour: red\n  plan:').replace(', colour: red}', '}'), { job: 'j' }).message).toContain(
      'unknown key `colour` in job',
    );
  });
  it('matches --job after vars are interpolated in job names', () => {
    const text = `
jobs:
- name: test-((version))
  plan: [{task: t, config: {platform: linux, run: {path: make}}}]
- name: other-((unset))
  plan: []
`;
    const plan = compile(text, { job: 'test-1.2', vars: { version: '1.2' } });
    expect(plan.name).toBe('test-1.2');
    expect(planError(text, { job: 'test-((version))', vars: { version: '1.2' } }).message).toContain('jobs: test-1.2, other-((unset))');
  });
});

describe('resources, get and put', () => {
  const pipeline = `
resource_types:
- {name: img, type: registry-image, source: {repository: example/img}}
resources:
- {name: repo, type: git, source: {uri: "file:///r.git", branch: ((branch))}, check_every: 1m, icon: git}
- {name: pinned, type: git, source: {uri: x}, version: {ref: abc}}
- {name: other, type: img, source: {a: b}}
- {name: unused, type: git, source: {uri: ((not_needed_here))}}
- {name: workers-type, type: gitv2, source: {}}
jobs:
- name: j
  plan:
  - get: src
    resource: repo
    trigger: true
    passed: [unit]
    params: {depth: 1}
  - get: pinned
  - put: repo
    inputs: detect
    params: {repository: src}
    get_params: {depth: 1}
  - put: other
    no_get: true
- name: unknown-key
  plan:
  - {get: repo, versoin: every}
- name: mock
  plan:
  - get: workers-type
`;
  it('compiles get and put with their resource, its interpolated source and resolved type', () => {
    const plan = compile(pipeline, { job: 'j', vars: { branch: 'main' } });
    const [get, pinned, put, image] = plan.plan.steps as Step[];
    expect(get).toMatchObject({ kind: 'get', name: 'src', version: 'latest', trigger: true, passed: ['unit'], params: { depth: 1 } });
    expect(get.kind === 'get' && get.resource).toMatchObject({
      name: 'repo',
      source: { uri: 'file:///r.git', branch: 'main' },
      type: { kind: 'host', name: 'git' },
    });
    expect(pinned).toMatchObject({ kind: 'get', version: { ref: 'abc' } });
    expect(put).toMatchObject({ kind: 'put', name: 'repo', inputs: 'detect', getParams: { depth: 1 }, noGet: false });
    // No `inputs`: detected from the params, as Concourse's put step does.
    expect(image).toMatchObject({
      kind: 'put',
      inputs: 'detect',
      noGet: true,
      resource: { type: { kind: 'image', type: 'registry-image', source: { repository: 'example/img' } } },
    });
  });
  it('reports unknown keys of get steps', () => {
    expect(planError(pipeline, { job: 'unknown-key' }).message).toContain('unknown key `versoin` in get step; did you mean `version`?');
  });
  it('a get sets a local var named after it (its metadata, Concourse 8.1); job tags apply to steps without their own (8.3)', () => {
    const plan = compile(
      `
resources: [{name: repo, type: git, source: {uri: x}}]
jobs:
- name: j
  tags: [minty]
  disable_reruns: true
  plan:
  - get: repo
  - task: t
    tags: [own]
    config: {platform: linux, run: {path: echo, args: ['((.:repo.commit))']}}
  - do:
    - task: u
      config: {platform: linux, run: {path: echo}}
`,
      { job: 'j' },
    );
    expect(plan.plan.steps.map((st) => st.tags)).toEqual([['minty'], ['own'], ['minty']]);
    expect((plan.plan.steps[2] as Step & { steps: Step[] }).steps[0].tags).toEqual(['minty']);
  });
  it('accepts a type that no file declares, as Concourse does (workers bring base types): a step using it errors when it runs', () => {
    const [get] = compile(pipeline, { job: 'mock', vars: { branch: 'main' } }).plan.steps;
    expect(get).toMatchObject({ kind: 'get', resource: { type: { kind: 'unknown', name: 'gitv2' } } });
  });
  it('examples/pipeline.yml compiles with --job unit', () => {
    const plan = loadPlan({
      file: join(__dirname, '../../examples/pipeline.yml'),
      job: 'unit',
      vars: { uri: 'file:///repo', branch: 'main' },
    });
    expect(plan.plan.steps.map((st) => describeStep(st.kind === 'in_parallel' ? st.steps[0] : st))).toEqual([
      'get repo',
      'task test',
      'load_var commit',
      'task report',
    ]);
  });
  it('a directory resource type must hold check, in and out', () => {
    const text = `
resource_types: [{name: mine, type: directory, source: {path: ./nowhere}}]
resources: [{name: r, type: mine}]
jobs: [{name: j, plan: [{get: r}]}]
`;
    expect(planError(text, { job: 'j' }).message).toMatch(/resource type `mine`: .*nowhere lacks executable check, in, out/);
  });
});

describe('static vars', () => {
  it('substitutes whole scalars with their type and stringifies inside strings', () => {
    const step = only(
      `
plan:
- task: t
  attempts: ((n))
  tags: ((tags))
  config:
    run: {path: ((cmd)), args: ["--level=((n))", "o=((obj))"]}
    params: {OBJ: ((obj))}
`,
      { n: 2, tags: ['a', 'b'], cmd: 'make', obj: { k: 'v' } },
    ) as TaskStep;
    expect(step.attempts).toBe(2);
    expect(step.tags).toEqual(['a', 'b']);
    expect(step.config?.run).toEqual({ path: 'make', args: ['--level=2', 'o={"k":"v"}'] });
    expect(step.config?.params).toEqual({ OBJ: '{"k":"v"}' });
  });
  it('reads numeric strings from -v where numbers are expected', () => {
    expect(only('plan: [{do: [], attempts: ((n)), timeout: ((t))}]', { n: '3', t: '5m' })).toMatchObject({
      attempts: 3,
      timeoutMs: 300_000,
    });
  });
  it('descends fields, and reads flat dotted names', () => {
    const step = only('plan: [{task: t, file: "((a.b))/((c.d))"}]', { a: { b: 'x' }, 'c.d': 'y' }) as TaskStep;
    expect(step.file).toBe('x/y');
  });
  it('reports all undefined vars at once, with lines, and nothing else about those values', () => {
    const err = planError(`
plan:
- task: t
  attempts: ((n))
  config:
    run: {path: ((cmd))}
- task: u
  file: ((dir))/((name)).yml
- task: v
  file: ((vault:secret))
`);
    expect(err.message.split('\n')).toEqual([
      'ci/build.yml:4:13: plan[0].attempts: undefined var `n`; pass it with -v n=VALUE or in a -l vars file',
      "ci/build.yml:6:17: plan[0].config.run.path: undefined var `cmd`; pass it with -v cmd=VALUE or in a -l vars file, or from the workers' credential manager with --creds-from-worker",
      'ci/build.yml:8:9: plan[1].file: undefined var `dir`; pass it with -v dir=VALUE or in a -l vars file',
      'ci/build.yml:8:9: plan[1].file: undefined var `name`; pass it with -v name=VALUE or in a -l vars file',
      'ci/build.yml:10:9: plan[2].file: undefined var `vault:secret`: no var source named `vault` (the plan declares no var_sources)',
    ]);
  });
  it('interpolates map keys as Concourse does, reporting each problem at its line', () => {
    expect((only('plan: [{task: t, file: f, params: {"((k))": v, "((k))_URL": u}}]', { k: 'K' }) as TaskStep).params).toEqual({
      K: 'v',
      K_URL: 'u',
    });
    // Concourse fills in the whole text before it reads it: a key may make the step what it is.
    expect(only('plan: [{"((kind))": t, file: f}]', { kind: 'task' })).toMatchObject({ kind: 'task', task: 't', file: 'f' });
    expect(
      planError('plan:\n- task: t\n  file: f\n  params:\n    ((k)): v\n    ((m)): w\n    x-((f)): y\n', {
        vars: { m: { a: 1 }, f: 1.5 },
      }).message.split('\n'),
    ).toEqual([
      "ci/build.yml:5:12: plan[0].params.((k)): undefined var `k`; pass it with -v k=VALUE or in a -l vars file, or from the workers' credential manager with --creds-from-worker",
      'ci/build.yml:6:12: plan[0].params.((m)): the key `((m))` is a map: a map key is a string, a number, a boolean or null',
      'ci/build.yml:7:14: plan[0].params.x-((f)): var `f` in the key `x-((f))` is a number with a fraction: inside a longer key only a string or a whole number can go',
    ]);
    expect(planError('plan: [{task: t, file: f, params: {"((a))": 1, "((b))": 2}}]', { vars: { a: 'X', b: 'X' } }).message).toMatch(
      /plan\[0\]\.params\.\(\(b\)\): the keys `\(\(a\)\)` and `\(\(b\)\)` both become `X`: Concourse keeps one of them by chance$/,
    );
  });
  it('leaves a credential ref in a key where the values may keep one, for the worker', () => {
    const plan = compilePlan({
      text: 'var_sources: [{name: vault, type: dummy, config: {vars: {}}}]\nplan: [{task: t, file: f, params: {"((vault:name))": v}}]',
      file: 'ci/build.yml',
    });
    expect((plan.plan.steps[0] as TaskStep).params).toEqual({ '((vault:name))': 'v' });
    expect(plan.deferredVars?.map((d) => d.ref)).toEqual(['vault:name']);
  });
});

describe('local vars', () => {
  it('leaves local vars as text when set by load_var or across', () => {
    const plan = compile(`
plan:
- load_var: version
  file: out/version
- task: t
  file: ci/((.:version)).yml
  across:
  - var: os
    values: [linux]
  params: {OS: ((.:os)), V: ((.:version.major))}
`).plan;
    expect(plan.steps[1]).toMatchObject({ file: 'ci/((.:version)).yml', params: { OS: '((.:os))', V: '((.:version.major))' } });
  });
  it('accepts an across list from a local var', () => {
    const step = compile('plan:\n- load_var: list\n  file: l.json\n- do: []\n  across: [{var: x, values: ((.:list))}]\n').plan.steps[1];
    expect(step.across?.vars[0].values).toBe('((.:list))');
  });
  it('sees load_vars of earlier steps inside do, try and in_parallel, and in hooks', () => {
    expect(() =>
      compile(`
plan:
- do:
  - in_parallel:
    - load_var: a
      file: a
  - try: {load_var: b, file: b}
  ensure: {task: t, file: "((.:a))/((.:b))"}
- task: u
  file: ((.:a))((.:b))
`),
    ).not.toThrow();
  });
  it('reports a local var used before it is set, or out of its across', () => {
    const err = planError(`
plan:
- task: early
  file: ((.:version))
- load_var: version
  file: ((.:version))
- in_parallel:
  - load_var: x
    file: x
  - task: sibling
    file: ((.:x))
- task: t
  file: f
  across: [{var: os, values: [a]}]
  ensure: {task: after, file: ((.:os))}
- do: []
  across: [{var: v, values: ((.:v))}]
`);
    expect(err.issues.map((i) => `${i.line} ${i.path}: ${i.message}`)).toEqual([
      '4 plan[0].file: local var `version` is not set by any load_var or across before this step',
      '6 plan[1].file: local var `version` is not set by any load_var or across before this step',
      '11 plan[2].in_parallel[1].file: local var `x` is not set by any load_var or across before this step',
      '15 plan[3].ensure.file: local var `os` is not set by any load_var or across before this step',
      '17 plan[4].across[0].values: local var `v` is not set by any load_var or across before this step',
    ]);
  });
});

describe('job names and files', () => {
  it('defaults the name to the file basename', () => {
    expect(compile('plan: []', { file: 'ci/build-and-test.yml' }).name).toBe('build-and-test');
    expect(compile('name: named\nplan: []').name).toBe('named');
  });
  it('loads a file from disk', () => {
    const dir = mkdtempSync(join(tmpdir(), 'causeway-plan-'));
    try {
      const file = join(dir, 'deploy.yaml');
      writeFileSync(file, 'plan:\n- task: t\n  file: ((f))\n');
      const plan = loadPlan({ file, vars: { f: 'x.yml' } });
      expect(plan).toMatchObject({ name: 'deploy', source: file, plan: { steps: [{ file: 'x.yml' }] } });
      expect(() => loadPlan({ file: join(dir, 'nope.yml') })).toThrow(/cannot read plan file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
  it('rejects a job name that does not match a single-job file', () => {
    expect(planError('name: a\nplan: []', { job: 'b' }).message).toContain('this file is the single job `a`, not `b`');
  });
});
