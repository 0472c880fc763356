// Instanced pipelines (Concourse's instance_vars) through the CLI against the real stack: one
// config set as instances with different branch vars and as a plain pipeline of the same name,
// each running its own builds; refs in fly's form on every command; destroying one instance
// leaves the others; rename-pipeline renames the whole group; a set_pipeline step with across +
// instance_vars sets instances, and `set_pipeline: self` in an instance sets that instance.
import fs from 'node:fs';
import path from 'node:path';
import { pipelineKey } from '../../schemas/instance-vars';
import { pipelineReader, pipelineSuite } from './pipeline-cli';

const suite = pipelineSuite('pipeline-instances', {
  // Steps run as their build's uid (a root worker): they read the pipeline files from here.
  shared: true,
});
const { cli } = suite;
const { buildLines, ended } = pipelineReader(cli);

// `reconfigure` sets its own pipeline (self) from pr-next.yml, which adds a job.
const PR = (extra = '') => `
jobs:
- name: unit
  plan:
  - task: test
    config:
      platform: linux
      run: {path: sh, args: [-c, 'echo "testing ((branch))"']}
- name: reconfigure
  plan:
  - task: write
    config:
      platform: linux
      outputs: [{name: ci}]
      run: {path: sh, args: [-c, 'cat DIR/pr-next.yml > ci/pipeline.yml']}
  - set_pipeline: self
    file: ci/pipeline.yml
${extra}`;

const pipelines = async () => {
  const r = await cli('pipelines', '--json');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as { name: string; instance_vars?: Record<string, unknown>; ref: string; jobs: number; paused: boolean }[];
};

test('instances of one config run their jobs independently, are listed, and one is destroyed alone', async () => {
  const file = path.join(suite.dir, 'pr.yml');
  fs.writeFileSync(file, PR().replace('DIR', suite.dir));
  fs.writeFileSync(
    path.join(suite.dir, 'pr-next.yml'),
    PR('- name: lint\n  plan: [{task: t, config: {platform: linux, run: {path: "true"}}}]\n').replace('DIR', suite.dir),
  );

  // The same name as a plain pipeline and as two instances: three pipelines.
  const plain = await cli('set-pipeline', '-n', '-p', 'pr', '-c', file, '-v', 'branch=main');
  expect(plain.code).toBe(0);
  expect(plain.stderr).toContain('pipeline created: pr (');
  const x = await cli('set-pipeline', '-n', '-p', 'pr', '-c', file, '-i', 'branch=feature-x');
  expect(x.code).toBe(0);
  expect(x.stderr).toContain('pipeline created: pr/branch:feature-x (see its jobs with: causeway jobs -p pr/branch:feature-x)');
  // A value holding `/` is quoted in the ref, as fly prints it; -i wins over -v for the same var.
  const y = await cli('set-pipeline', '-n', '-p', 'pr', '-c', file, '-v', 'branch=ignored', '-i', 'branch=feature/y');
  expect(y.code).toBe(0);
  expect(y.stderr).toContain('pipeline created: pr/branch:"feature/y"');
  // New pipelines start paused, as fly's; each instance is unpaused on its own.
  expect(y.stderr).toContain(`to unpause, run: causeway unpause-pipeline -p 'pr/branch:"feature/y"'`);
  for (const ref of ['pr', 'pr/branch:feature-x', 'pr/branch:"feature/y"']) expect((await cli('unpause-pipeline', '-p', ref)).code).toBe(0);
  const again = await cli('set-pipeline', '-n', '-p', 'pr', '-c', file, '-i', 'branch=feature-x');
  expect(again.stderr).toContain('no changes to apply');

  expect((await pipelines()).map((p) => [p.ref, p.name, p.instance_vars])).toEqual([
    ['pr', 'pr', undefined],
    ['pr/branch:"feature/y"', 'pr', { branch: 'feature/y' }],
    ['pr/branch:feature-x', 'pr', { branch: 'feature-x' }],
  ]);
  const table = await cli('pipelines');
  expect(table.stdout).toMatch(/^pr\/branch:feature-x\s+no\s+2\s+0$/m);

  // Each instance's build runs with its own vars, numbered on its own.
  const tx = await cli('trigger-job', '-w', '-j', 'pr/branch:feature-x/unit');
  expect(tx.code).toBe(0);
  expect(tx.stderr).toContain(
    `started pr/branch:feature-x/unit #1 (build build-${pipelineKey({ name: 'pr', instanceVars: { branch: 'feature-x' } })}:unit:1)`,
  );
  expect(tx.stdout).toContain('testing feature-x');
  const ty = await cli('trigger-job', '-w', '-j', 'pr/branch:"feature/y"/unit');
  expect(ty.code).toBe(0);
  expect(ty.stdout).toContain('testing feature/y');
  // The pipeline sees a build end at its next look (every 2 s).
  expect(await ended('pr/branch:feature-x', 'unit', 1)).toBe('succeeded');
  expect(await ended('pr/branch:"feature/y"', 'unit', 1)).toBe('succeeded');
  expect(await buildLines('pr')).toMatchObject({ unit: [] });
  // fly's refs: keys in any order and YAML quoting name the same instance.
  expect(await buildLines("pr/branch:'feature/y'")).toMatchObject({ unit: ['#1 succeeded'] });
  const nope = await cli('trigger-job', '-j', 'pr/branch:feature-x/nope');
  expect(nope.code).toBe(2);
  expect(nope.stderr).toContain('no job nope in pipeline pr/branch:feature-x (jobs: unit, reconfigure)');
  const builds = await cli('builds', '-j', 'pr/branch:feature-x/unit', '--json');
  expect((JSON.parse(builds.stdout) as { status: string }[]).map((b) => b.status)).toEqual(['succeeded']);
  // fly's builds -p: every job of that instance, none of the other's.
  const ofInstance = await cli('builds', '-p', 'pr/branch:feature-x', '--json');
  expect((JSON.parse(ofInstance.stdout) as { buildId: string }[]).map((b) => b.buildId)).toEqual(
    (JSON.parse(builds.stdout) as { buildId: string }[]).map((b) => b.buildId),
  );

  // set_pipeline: self in an instance sets that instance (with its vars), not the plain pipeline or the other instance.
  const self = await cli('trigger-job', '-w', '-j', 'pr/branch:feature-x/reconfigure');
  expect(self.code).toBe(0);
  expect(self.stdout).toContain('setting pipeline: pr/branch:feature-x');
  expect((await pipelines()).map((p) => [p.ref, p.jobs])).toEqual([
    ['pr', 2],
    ['pr/branch:"feature/y"', 2],
    ['pr/branch:feature-x', 3],
  ]);
  // fly's pause-pipeline --all / unpause-pipeline -a: every pipeline, instances included.
  const pausedAll = await cli('pause-pipeline', '--all');
  expect(pausedAll.stderr).toContain(`paused 'pr/branch:"feature/y"'`);
  expect((await pipelines()).map((p) => p.paused)).toEqual([true, true, true]);
  expect((await cli('unpause-pipeline', '-a')).code).toBe(0);
  expect((await pipelines()).map((p) => p.paused)).toEqual([false, false, false]);

  // Destroying one instance leaves the pipeline of that name and the other instance running.
  expect((await cli('destroy-pipeline', '-n', '-p', 'pr/branch:feature-x')).code).toBe(0);
  expect((await pipelines()).map((p) => p.ref)).toEqual(['pr', 'pr/branch:"feature/y"']);
  expect((await cli('jobs', '-p', 'pr/branch:feature-x')).stderr).toContain('no pipeline pr/branch:feature-x');
  const ty2 = await cli('trigger-job', '-w', '-j', 'pr/branch:"feature/y"/unit');
  expect(ty2.code).toBe(0);
  expect(await ended('pr/branch:"feature/y"', 'unit', 2)).toBe('succeeded');

  // rename-pipeline renames the name's whole instance group, as Concourse's: the plain pipeline and the instance.
  const rp = await cli('rename-pipeline', '-o', 'pr', '-n', 'pr2');
  expect(rp.code).toBe(0);
  expect(rp.stderr).toContain(`pipeline successfully renamed to 'pr2'`);
  expect((await pipelines()).map((p) => p.ref)).toEqual(['pr2', 'pr2/branch:"feature/y"']);
  const ty3 = await cli('trigger-job', '-w', '-j', 'pr2/branch:"feature/y"/unit');
  expect(ty3.code).toBe(0);
  expect(await ended('pr2/branch:"feature/y"', 'unit', 3)).toBe('succeeded');

  for (const p of ['pr2', 'pr2/branch:"feature/y"']) expect((await cli('destroy-pipeline', '-n', '-p', p)).code).toBe(0);
});

test('a malformed ref gets an error saying what is wrong and how to write one', async () => {
  const cases: [string[], RegExp][] = [
    [
      ['trigger-job', '-j', 'pr/branch=x/unit'],
      /-j pr\/branch=x\/unit: instance vars should be formatted as <key1:value1>\(,<key2:value2>\)/,
    ],
    [['jobs', '-p', 'pr/branch:{x'], /-p pr\/branch:\{x: invalid value for key 'branch'/],
    [['check-resource', '-r', 'pr'], /-r pr: argument format should be <pipeline>\/<resource>/],
    [['pause-pipeline', '-p', 'pr/"a".:b'], /-p pr\/"a"\.:b: invalid var '"a"\.': empty field/],
    [['set-pipeline', '-n', '-p', 'pr/branch:x', '-c', 'pr.yml'], /pipeline name cannot contain '\/'.*\n.*-i branch=feature-x/],
    [['set-pipeline', '-n', '-p', 'pr', '-c', 'pr.yml', '-i', 'branch'], /invalid variable pair 'branch' \(must be name=value\)/],
    [['jobs', '-p', 'p r/branch:x'], /-p p r\/branch:x: pipeline name `p r` is not allowed/],
    // No pipeline may be named like an instance's key.
    [
      ['set-pipeline', '-n', '-p', 'pr+branch-x-0123456789abcdef', '-c', 'pr.yml'],
      /pipeline name `pr\+branch-x-0123456789abcdef` is not allowed/,
    ],
  ];
  for (const [args, message] of cases) {
    const r = await cli(...args);
    expect({ args, code: r.code }).toEqual({ args, code: 2 });
    expect(r.stderr).toMatch(message);
  }
  // The fix names fly's form.
  expect((await cli('jobs', '-p', 'pr/branch')).stderr).toContain('NAME/KEY:VALUE[,KEY:VALUE...] for an instance');
});

test('a set_pipeline step with across and instance_vars sets one instance per value', async () => {
  fs.writeFileSync(
    path.join(suite.dir, 'branch.yml'),
    `jobs:\n- name: unit\n  plan: [{task: t, config: {platform: linux, run: {path: sh, args: [-c, 'echo "on ((branch)) ((greeting))"']}}}]\n`,
  );
  fs.writeFileSync(
    path.join(suite.dir, 'set.yml'),
    `var_sources:
- {name: vs, type: dummy, config: {vars: {tier: gold}}}
plan:
- task: write
  config:
    platform: linux
    outputs: [{name: ci}]
    run: {path: sh, args: [-c, 'cat ${suite.dir}/branch.yml > ci/branch.yml']}
- across:
  - var: branch
    values: [main, feature-z]
  set_pipeline: branches
  file: ci/branch.yml
  vars: {greeting: hello, branch: overridden}
  instance_vars: {branch: ((.:branch)), tier: ((vs:tier))}
`,
  );
  const run = await cli('run', 'set.yml');
  expect(run.code).toBe(0);
  expect(run.stdout).toContain('setting pipeline: branches/branch:main,tier:gold');
  expect(run.stdout).toContain('setting pipeline: branches/branch:feature-z,tier:gold');
  expect((await pipelines()).filter((p) => p.name === 'branches').map((p) => p.ref)).toEqual([
    'branches/branch:feature-z,tier:gold',
    'branches/branch:main,tier:gold',
  ]);
  // Instance vars are vars of the file, winning over the step's vars.
  const t = await cli('trigger-job', '-w', '-j', 'branches/branch:feature-z,tier:gold/unit');
  expect(t.code).toBe(0);
  expect(t.stdout).toContain('on feature-z hello');
  // Running the step again changes nothing.
  const rerun = await cli('run', 'set.yml');
  expect(rerun.code).toBe(0);
  expect(rerun.stdout).toContain('no changes to apply.');
  for (const p of ['branches/branch:main,tier:gold', 'branches/branch:feature-z,tier:gold'])
    expect((await cli('destroy-pipeline', '-n', '-p', p)).code).toBe(0);
});
