// Checks made before a build starts (schemas/checks.ts): each hostile or careless plan fails
// at compile time with file:line and what to do, instead of inside the engine.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compilePlan, loadPlan, parseTaskConfig } from '../../schemas';
import { unusedArtifactFlags } from '../../schemas/checks';

const task = (config: string, extra = '') => `
plan:
- task: t
  ${extra}
  config:
    platform: linux
    run: {path: sh}
${config}
`;

function compileError(text: string, vars?: Record<string, unknown>): string {
  try {
    compilePlan({ file: 'p.yml', text, vars });
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('the plan compiled');
}

test.each([
  [
    'an output path that leaves the working directory',
    '    outputs: [{name: out, path: ../../etc}]',
    /p\.yml:\d+:\d+: .*outputs\[0\]\.path: `\.\.\/\.\.\/etc` leaves the task's working directory/,
  ],
  ['an absolute input path', '    inputs: [{name: in, path: /etc}]', /inputs\[0\]\.path: `\/etc` is absolute/],
  ['a cache path with ../..', '    caches: [{path: a/../../../x}]', /caches\[0\]\.path: `a\/\.\.\/\.\.\/\.\.\/x` leaves/],
  ['the whole working directory as a cache', '    caches: [{path: ./}]', /a cache cannot be the whole working directory/],
  ['a run.dir that leaves', '    run: {path: sh, dir: ../..}', /run\.dir: `\.\.\/\.\.` leaves/],
  ['an artifact name ..', '    inputs: [{name: ..}]', /inputs\[0\]\.name: `\.\.` is not a name/],
  ['an artifact name with /', '    outputs: [{name: a/b}]', /outputs\[0\]\.name: `a\/b` contains `\/`/],
])('%s fails before the build', (_what, config, expected) => {
  // A second `run:` key would be a YAML error: replace the default one when the case sets its own.
  const text = config.includes('run:') ? task('').replace('    run: {path: sh}\n', `${config}\n`) : task(config);
  expect(compileError(text)).toMatch(expected);
});

test('a plan name with ../ is refused where it is written', () => {
  expect(compileError(`name: ../../escape\nplan:\n- task: t\n  config: {platform: linux, run: {path: sh}}\n`)).toMatch(
    /p\.yml:1:\d+: name: plan name: `\.\.\/\.\.\/escape` contains `\/`/,
  );
});

const nested = (depth: number) => {
  let step = `{task: t, config: {platform: linux, run: {path: sh}}}`;
  for (let i = 0; i < depth; i++) step = `{do: [${step}]}`;
  return `plan:\n- ${step}\n`;
};

test('100 nested do: the step id would exceed a file name; said at compile time, not as ENAMETOOLONG', () => {
  expect(compileError(nested(100))).toMatch(
    /steps nested too deeply: this step's id is \d+ bytes, and a step id becomes a directory name of at most 255 bytes/,
  );
});

test('a plan nested thousands deep is a compile error with its position and the limit, not a crash', () => {
  expect(compileError(nested(3000))).toMatch(
    /^p\.yml:\d+:\d+: invalid YAML: maps and lists nest more than 256 levels deep here; a plan needs far fewer .*: flatten the file$/,
  );
  // 120 levels of `{do: [...]}` are 240 of YAML: parsed, then refused for their step ids.
  expect(compileError(nested(120))).toMatch(/steps nested too deeply/);
});

test('across indices count against the id length', () => {
  const ok = nested(40);
  expect(() => compilePlan({ file: 'p.yml', text: ok })).not.toThrow();
  const across = ok.replace('plan:\n- {do:', 'plan:\n- {across: [{var: a, values: [1]}, {var: b, values: [1]}], do:');
  // 40 levels of `.do.0` are 200 bytes plus `plan.0`; two across vars add at most 19.
  expect(() => compilePlan({ file: 'p.yml', text: across })).not.toThrow();
  expect(compileError(nested(49).replace('plan:\n- {do:', 'plan:\n- {across: [{var: a, values: [1]}], do:'))).toMatch(
    /with its across indices/,
  );
});

test('a 1 MB param is refused: no process accepts an environment variable that large (spawn E2BIG)', () => {
  const text = task('    params: {BIG: ((big))}');
  expect(compileError(text, { big: 'x'.repeat(1024 * 1024) })).toMatch(
    /params\.BIG: param `BIG` is 1\.0 MB; a process accepts at most 128\.0 KB per environment variable: pass large data as a file in an input \(-i\)/,
  );
  expect(compileError(task('', 'params: {BIG: ((big))}'), { big: 'x'.repeat(200 * 1024) })).toMatch(
    /plan\.0\.params: param `BIG` is 200\.0 KB/,
  );
});

test('params and args that fit one by one but not together are refused', () => {
  const params = Array.from({ length: 12 }, (_, i) => `      P${i}: ((v))`).join('\n');
  expect(compileError(task(`    params:\n${params}`), { v: 'x'.repeat(100 * 1024) })).toMatch(
    /its params and arguments take 1\.2 MB; a process accepts at most about 1\.0 MB/,
  );
});

test('a 3 MB var is named with Temporal’s limit in plain words', () => {
  expect(compileError(task(''), { big: 'x'.repeat(3 * 1024 * 1024) })).toBe(
    'var `big` is 3.0 MB; Temporal accepts at most 2.0 MB per payload: move large data into an input with -i',
  );
});

test('a 3 MB plan says its size and Temporal’s limit', () => {
  // 3 MB: a larger file is refused for its size before it is parsed (hostile-input.test.ts).
  const steps = Array.from(
    { length: 30 },
    (_, i) => `- task: t${i}\n  config: {platform: linux, run: {path: echo, args: [${'x'.repeat(100 * 1024)}]}}`,
  ).join('\n');
  expect(compileError(`plan:\n${steps}\n`)).toMatch(
    /^p\.yml:1:1: the plan is 2\.9 MB once vars are filled in; Temporal accepts at most 2\.0 MB per payload: move large data into an input with -i$/,
  );
});

test('invalid UTF-8 in a plan file is an error at its line and column, not silently replaced', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-utf8-'));
  try {
    const file = path.join(dir, 'bad.yml');
    fs.writeFileSync(
      file,
      Buffer.concat([
        Buffer.from('plan:\n- task: t\n  config: {platform: linux, run: {path: echo, args: [ok'),
        Buffer.from([0xc3, 0x28]),
        Buffer.from(']}}\n'),
      ]),
    );
    expect(() => loadPlan({ file })).toThrow(/bad\.yml:3:56: invalid UTF-8 \(byte 0xc3 at offset 71\): save the file as UTF-8/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a task file (execute -c, or a step’s file: at run time) gets the same checks', () => {
  expect(() => parseTaskConfig({ file: 't.yml', text: 'platform: linux\noutputs: [{name: o, path: /}]\nrun: {path: sh}\n' })).toThrow(
    /t\.yml:2:\d+: outputs\[0\]\.path: `\/` is absolute/,
  );
});

test('-i and -o names no step uses', () => {
  const plan = compilePlan({
    file: 'p.yml',
    text: `plan:\n- task: t\n  input_mapping: {src: repo}\n  config: {platform: linux, inputs: [{name: src}], outputs: [{name: out}], run: {path: sh}}\n`,
  });
  expect(unusedArtifactFlags(plan, ['repo'], ['out'])).toEqual([]);
  expect(unusedArtifactFlags(plan, ['src', 'repo'], ['dist'])).toEqual([
    '-i src: no step of the plan has an input named `src` (inputs: repo)',
    '-o dist: no step of the plan has an output named `dist` (outputs: out)',
  ]);
  const fromFile = compilePlan({ file: 'p.yml', text: `plan:\n- task: t\n  file: repo/ci/t.yml\n` });
  expect(unusedArtifactFlags(fromFile, ['anything'], [])).toBeUndefined();
  // load_var and set_pipeline read a file of an artifact too.
  const readers = compilePlan({
    file: 'p.yml',
    text: `plan:\n- load_var: v\n  file: vars/v.txt\n- set_pipeline: p\n  file: src/p.yml\n  var_files: [conf/v.yml]\n`,
  });
  expect(unusedArtifactFlags(readers, ['vars', 'src', 'conf'], [])).toEqual([]);
  const across = compilePlan({
    file: 'p.yml',
    text: `plan:\n- across: [{var: a, values: [x]}]\n  set_pipeline: p\n  file: ((.:a))/p.yml\n`,
  });
  expect(unusedArtifactFlags(across, ['x'], [])).toBeUndefined();
});
