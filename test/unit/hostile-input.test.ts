// Hostile YAML files (schemas/errors.ts, Source): each is refused before the parser spends
// seconds, gigabytes or its stack on it, with FILE:LINE:COL, what is wrong and what to do.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compilePlan, loadPlan, parseTaskConfig } from '../../schemas';
import YAML, { Parser } from 'yaml';
import { jsonBytes, readYamlFile } from '../../schemas/checks';
import { BuildInputError, parseBuildInput, parsePartInput } from '../../schemas/build-input';
import { compilePipeline } from '../../schemas/pipeline';
import { ACCEPTED_YAML_OPTIONS, MAX_YAML_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES, PlanError, Source } from '../../schemas/errors';

const TASK = '{task: t, config: {platform: linux, run: {path: echo}}}';

function compileError(text: string, vars?: Record<string, unknown>): string {
  try {
    compilePlan({ file: 'p.yml', text, vars });
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('the plan compiled');
}

describe('nesting', () => {
  test('a plan nested 1000 levels deep (block style) says the limit, not "Maximum call stack size exceeded"', () => {
    let text = 'plan:\n';
    for (let i = 0; i < 1000; i++) text += `${'  '.repeat(i)}- do:\n`;
    const message = compileError(text);
    expect(message).toMatch(
      new RegExp(`^p\\.yml:\\d+:\\d+: invalid YAML: maps and lists nest more than ${MAX_YAML_DEPTH} levels deep here`),
    );
    expect(message).not.toMatch(/call stack/);
  });

  test('flow lists and maps 5000 deep, anywhere in the file, are refused the same way', () => {
    expect(compileError(`plan: ${'['.repeat(5000)}${']'.repeat(5000)}\n`)).toMatch(
      /^p\.yml:1:\d+: invalid YAML: maps and lists nest more than/,
    );
    expect(compileError(`plan: []\nx: ${'{a: '.repeat(5000)}1${'}'.repeat(5000)}\n`)).toMatch(
      /^p\.yml:2:\d+: invalid YAML: maps and lists nest/,
    );
  });

  test('a task file nested deeply is refused by parseTaskConfig too', () => {
    expect(() => parseTaskConfig({ file: 't.yml', text: `run: {path: x}\nparams: ${'['.repeat(3000)}${']'.repeat(3000)}\n` })).toThrow(
      /^t\.yml:2:\d+: invalid YAML: maps and lists nest more than/,
    );
  });

  test('nesting up to the limit still compiles (a deep map in a task var)', () => {
    let value = '1';
    for (let i = 0; i < MAX_YAML_DEPTH - 10; i++) value = `{a: ${value}}`;
    const text = `plan:\n- task: t\n  config: {platform: linux, run: {path: echo}}\n  vars: ${value}\n`;
    expect(() => compilePlan({ file: 'p.yml', text })).not.toThrow();
  });
});

describe('size', () => {
  test('a file over 4 MB is refused at once with its size, before the parser', () => {
    const text = `plan:\n- ${TASK}\nx: |\n${`  ${'a'.repeat(98)}\n`.repeat(100_000)}`;
    expect(Buffer.byteLength(text)).toBeGreaterThan(MAX_YAML_BYTES);
    expect(compileError(text)).toMatch(
      /^p\.yml:1:1: the file is 10,100,\d{3} bytes; a plan, pipeline, task or vars file is at most 4,194,304 bytes/,
    );
  });

  test(`more than ${MAX_YAML_NODES} values in a small file are refused where the limit is passed, fast`, () => {
    // The parser took 24 s and 2 GB for 4 MB of such items; the lexer stops at the limit, and the parser never runs.
    const parse = jest.spyOn(Parser.prototype, 'parse');
    try {
      const message = compileError(`plan: []\nx: [${'1,'.repeat(1_500_000)}1]\n`);
      expect(message).toMatch(/^p\.yml:2:\d+: invalid YAML: the file holds more than 200,000 values by here/);
      expect(parse).not.toHaveBeenCalled();
    } finally {
      parse.mockRestore();
    }
  });

  test('a map of 40,000 keys is parsed in one pass (the YAML library compared every pair of keys: 14 s)', () => {
    const keys = Array.from({ length: 40_000 }, (_, i) => `k${i}: 1`).join(', ');
    const src = new Source('v.yml', `{${keys}}`);
    expect(src.issues).toEqual([]);
    expect(Object.keys(src.value as object)).toHaveLength(40_000);
  });
});

describe('keys', () => {
  test('a key written twice is refused at the second, naming the first', () => {
    expect(compileError(`plan:\n- ${TASK}\nplan: []\n`)).toBe(
      'p.yml:3:1: invalid YAML: map keys must be unique: `plan` is set twice in this map (first at line 1); keep one',
    );
  });

  test('keys that become the same JS key (1 and "1", null and "") are refused, not silently merged', () => {
    expect(() => parseTaskConfig({ file: 't.yml', text: 'run: {path: x}\nparams: {1: a, "1": b}\n' })).toThrow(
      't.yml:2:16: invalid YAML: map keys must be unique: `1` is set twice in this map (first at line 2); keep one',
    );
    expect(() => parseTaskConfig({ file: 't.yml', text: 'run: {path: x}\nparams: {~: a, "": b}\n' })).toThrow(/`` is set twice/);
  });

  test('an alias inside its own anchor is refused at the alias (it was "error: Maximum call stack size exceeded", no place)', () => {
    expect(compileError('a: &a [*a]\nplan: []\n')).toBe(
      'p.yml:1:8: invalid YAML: the alias `*a` is inside the value its anchor `&a` names, so it would contain itself; use the anchor after its value ends',
    );
    expect(compileError('a: &a {b: [{c: *a}]}\nplan: []\n')).toMatch(/^p\.yml:1:16: invalid YAML: the alias `\*a` is inside the value/);
    expect(compileError('a: &a {<<: *a, x: 1}\nplan: []\n')).toMatch(/^p\.yml:1:\d+: invalid YAML: /);
  });

  test('merge keys may repeat, as before', () => {
    const text = `a: &a {platform: linux}\nb: &b {run: {path: echo}}\nplan:\n- task: t\n  config:\n    <<: *a\n    <<: *b\n`;
    const src = new Source('p.yml', text);
    expect(src.issues).toEqual([]);
  });
});

describe('bytes that are not YAML text', () => {
  test('a NUL byte is refused at its place, as Concourse refuses control characters', () => {
    expect(compileError(`plan:\n- task: t\0x\n  config: {platform: linux, run: {path: echo}}\n`)).toMatch(
      /^p\.yml:2:10: invalid YAML: a NUL byte \(U\+0000\): is this a binary file\?/,
    );
  });

  test('other control characters too; an escape in double quotes stays allowed', () => {
    expect(compileError(`plan:\n- task: "t\x1b[31m"\n  config: {platform: linux, run: {path: echo}}\n`)).toMatch(
      /^p\.yml:2:11: invalid YAML: control character U\+001B is not allowed in YAML: .*"\\u001B"/,
    );
    const plan = compilePlan({ file: 'p.yml', text: `plan:\n- task: "t\\e"\n  config: {platform: linux, run: {path: echo}}\n` });
    expect(plan.plan.steps[0]).toMatchObject({ task: 't\x1b' });
  });

  test('tabs, CRLF and a byte order mark are text', () => {
    const plan = compilePlan({
      file: 'p.yml',
      text: `\ufeffplan:\r\n- task: "a\tb"\r\n  config: {platform: linux, run: {path: echo}}\r\n`,
    });
    expect(plan.plan.steps[0]).toMatchObject({ task: 'a\tb' });
  });

  test('a !!binary value is its text, as Concourse decodes it; bytes that are not UTF-8 are refused', () => {
    const plan = compilePlan({ file: 'p.yml', text: `plan:\n- task: !!binary aGVsbG8=\n  config: {platform: linux, run: {path: echo}}\n` });
    expect(plan.plan.steps[0]).toMatchObject({ task: 'hello' });
    expect(compileError(`plan:\n- task: !!binary //79\n  config: {platform: linux, run: {path: echo}}\n`)).toMatch(
      /^p\.yml:2:18: invalid YAML: this `!!binary` value is not UTF-8 text/,
    );
  });

  test('a second document is refused at its start with what to do', () => {
    expect(compileError(`plan:\n- ${TASK}\n---\nplan: []\n`)).toMatch(
      /^p\.yml:\d+:1: invalid YAML: a second YAML document \(`---`\) starts here; .*: remove the `---`, or split the file$/,
    );
  });
});

describe('values that end up in an environment, a path or a process', () => {
  test('param names a process cannot have (`=`, NUL, empty) and NUL in values are refused before the build', () => {
    const message = compileError(
      `plan:\n- task: t\n  params: {"A=B": x, "C\\0D": y, "": z, "1X": w, OK: "v\\0"}\n  config: {platform: linux, run: {path: echo}}\n`,
    );
    expect(message).toContain('plan.0.params: param name: `A=B` contains `=`, which no environment variable');
    expect(message).toContain('plan.0.params: param name: `C\\u0000D` contains a NUL byte');
    expect(message).toContain('plan.0.params: param name: an environment variable needs a name; this one is empty');
    expect(message).toContain('plan.0.params: param `OK` contains a NUL byte');
    expect(message).not.toContain('1X');
  });

  test("a task config's params, run.path and args are checked where they are written", () => {
    expect(() => parseTaskConfig({ file: 't.yml', text: 'run: {path: "a\\0b", args: ["x\\0"]}\nparams: {"E=F": 1}\n' })).toThrow(
      [
        't.yml:1:13: run.path: `run.path` contains a NUL byte, which a process cannot be given: remove it',
        't.yml:1:28: run.args[0]: this argument contains a NUL byte, which a process cannot be given: remove it',
        "t.yml:2:10: params.E=F: param name: `E=F` contains `=`, which no environment variable's name can hold (the environment is NAME=value): rename it",
      ].join('\n'),
    );
  });

  test("a `file:` outside the build's artifacts is refused at compile time (task, load_var, set_pipeline, service)", () => {
    const message = compileError(`plan:
- task: a
  file: ../../etc/passwd
- task: b
  file: /etc/passwd
- load_var: v
  file: repo/../../x.yml
- set_pipeline: p
  file: repo/p.yml
  var_files: [repo/../../v.yml]
- task: c
  config: {platform: linux, run: {path: echo}}
  services:
  - {name: db, file: ../db.yml}
`);
    expect(message.split('\n')).toEqual([
      expect.stringMatching(
        /^p\.yml:2:1: plan\.0\.file: `\.\.\/\.\.\/etc\/passwd`: `\.\.` is not a name: .*`<artifact>\/<path>` in an artifact of the build/,
      ),
      expect.stringMatching(/^p\.yml:4:1: plan\.1\.file: `\/etc\/passwd` is absolute: /),
      expect.stringMatching(/^p\.yml:6:1: plan\.2\.file: `repo\/\.\.\/\.\.\/x\.yml` leaves the artifact `repo`: /),
      expect.stringMatching(/^p\.yml:8:1: plan\.3\.var_files\[0\]: `repo\/\.\.\/\.\.\/v\.yml` leaves the artifact `repo`: /),
      expect.stringMatching(/^p\.yml:11:1: plan\.4\.services\[0\]\.file: `\.\.\/db\.yml`: `\.\.` is not a name/),
    ]);
    // Inside its artifact, or made by a var at run time: fine.
    const ok = `plan:\n- task: a\n  file: repo/./ci/../task.yml\n- load_var: d\n  file: repo/d\n- task: b\n  file: ((.:d))/task.yml\n`;
    expect(() => compilePlan({ file: 'p.yml', text: ok })).not.toThrow();
  });

  test('`across` of 1,000 x 1,000 x 1,000 values is refused (a billion steps); 100,000 values are not', () => {
    const values = `[${Array.from({ length: 1000 }, (_, i) => i).join(',')}]`;
    const across = `[{var: a, values: ${values}}, {var: b, values: ${values}}, {var: c, values: ${values}}]`;
    expect(compileError(`plan:\n- task: t\n  across: ${across}\n  config: {platform: linux, run: {path: echo}}\n`)).toMatch(
      /^p\.yml:2:1: plan\.0\.across: `across` runs this step 1,000,000,000 times .*; a build runs a step at most 100,000 times: split the values across builds, or use fewer vars$/,
    );
    // Nested: an across inside another multiplies, said once at the step that passes the limit.
    const nested = `plan:\n- across: [{var: a, values: ${values}}]\n  do:\n  - task: t\n    across: [{var: b, values: ${values}}]\n    config: {platform: linux, run: {path: echo}}\n`;
    expect(compileError(nested)).toMatch(/^p\.yml:4:1: plan\.0\.do\.0\.across: `across` runs this step 1,000,000 times/);
    const big = `[${Array.from({ length: 100_000 }, (_, i) => i).join(',')}]`;
    expect(() =>
      compilePlan({
        file: 'p.yml',
        text: `plan:\n- task: t\n  across: [{var: v, values: ${big}}]\n  config: {platform: linux, run: {path: echo}}\n`,
      }),
    ).not.toThrow();
  });

  test('attempts past what a history holds are refused; 1,000 are not', () => {
    const plan = (n: string) => `plan:\n- task: t\n  attempts: ${n}\n  config: {platform: linux, run: {path: echo}}\n`;
    expect(compileError(plan('1000000000'))).toMatch(
      /^p\.yml:2:1: plan\.0\.attempts: attempts is at most 1,000 .*; this is 1,000,000,000$/,
    );
    expect(() => compilePlan({ file: 'p.yml', text: plan('1000') })).not.toThrow();
  });
});

describe('the build input of any Temporal client (parseBuildInput, as the workflow runs it first)', () => {
  const task = (o: Record<string, unknown> = {}) => ({
    kind: 'task',
    id: 'plan.0',
    task: 't',
    config: { run: { path: 'echo', args: [] } },
    ...o,
  });
  const input = (steps: unknown[], o: Record<string, unknown> = {}) => ({
    plan: { name: 'j', source: 's', plan: { kind: 'do', id: 'plan', steps } },
    ...o,
  });
  const refused = (raw: unknown): string => {
    try {
      parseBuildInput(raw);
    } catch (err) {
      expect(err).toBeInstanceOf(BuildInputError);
      return (err as Error).message;
    }
    throw new Error('accepted');
  };

  test('steps nested 20,000 deep are a BuildInputError (it was a RangeError: the workflow task failed and was retried forever)', () => {
    let deep: Record<string, unknown> = task();
    for (let i = 0; i < 20_000; i++) deep = { kind: 'try', id: `s${i}`, step: deep };
    expect(refused(input([deep]))).toMatch(
      /^invalid build input \(see docs\/client\.md\): plan\.plan\.steps\[0\]\.step\.step.*…(\.step)+: steps nest more than 128 levels deep/,
    );
    let value: unknown = 1;
    for (let i = 0; i < 5000; i++) value = [value];
    expect(refused(input([task({ vars: { v: value } })]))).toMatch(/the input nests more than 1024 levels deep$/);
  });

  test.each([
    ['a step id that is a path', input([task({ id: '..' })]), 'plan.plan.steps[0].id: `..` is not a step id'],
    ['a step id of 10,000 bytes', input([task({ id: 'a'.repeat(10_000) })]), 'plan.plan.steps[0].id: a step id is at most 255 bytes'],
    ['two steps of one id', input([task(), task()]), 'plan.plan.steps[1].id: the step id `plan.0` is used twice'],
    [
      'a plan name with /',
      input([task()]).plan && { ...input([task()]), plan: { ...input([task()]).plan, name: '../x' } },
      'plan.name: `../x` contains `/`',
    ],
    ['an upload named ..', input([task()], { uploads: ['..'] }), 'uploads[0]: `..` is not a name'],
    [
      'an input named ../../etc',
      input([task({ config: { run: { path: 'x', args: [] }, inputs: [{ name: '../../etc' }] } })]),
      'plan.plan.steps[0].config.inputs[0].name: `../../etc` contains `/`',
    ],
    [
      'an absolute output path',
      input([task({ config: { run: { path: 'x', args: [] }, outputs: [{ name: 'o', path: '/etc' }] } })]),
      'plan.plan.steps[0].config.outputs[0].path: `/etc` is absolute',
    ],
    [
      'a cache outside the directory',
      input([task({ config: { run: { path: 'x', args: [] }, caches: [{ path: '../..' }] } })]),
      'plan.plan.steps[0].config.caches[0].path: `../..` leaves',
    ],
    [
      'run.dir outside',
      input([task({ config: { run: { path: 'x', args: [], dir: '../' } } })]),
      'plan.plan.steps[0].config.run.dir: `../` leaves',
    ],
    ['an env name with =', input([task({ params: { 'A=B': 'x' } })]), 'plan.plan.steps[0].params.A=B: `A=B` contains `=`'],
    [
      'a NUL in an argument',
      input([task({ config: { run: { path: 'x', args: ['a\0b'] } } })]),
      'run.args[0]: this argument contains a NUL byte',
    ],
    ['an input mapping to ../b', input([task({ inputMapping: { a: '../b' } })]), 'plan.plan.steps[0].inputMapping.a: `../b` contains `/`'],
    [
      'a load_var file outside its artifact',
      input([{ kind: 'load_var', id: 'plan.0', var: 'v', file: 'repo/../../etc/passwd', reveal: false }]),
      'plan.plan.steps[0].file: `repo/../../etc/passwd` leaves the artifact `repo`',
    ],
    [
      'a billion across iterations',
      input([
        task({ across: { vars: ['a', 'b', 'c'].map((v) => ({ var: v, values: Array(1000).fill(1), maxInFlight: 1 })), failFast: false } }),
      ]),
      'plan.plan.steps[0].across: `across` runs this step 1,000,000,000 times',
    ],
    ['a million attempts', input([task({ attempts: 1_000_000 })]), 'plan.plan.steps[0].attempts: attempts is at most 1,000'],
    ['a negative memory limit', input([task({ containerLimits: { memory: -1 } })]), 'plan.plan.steps[0].containerLimits.memory: Too small'],
    ['a timeout past any Go duration', input([task({ timeoutMs: 1e15 })]), 'plan.plan.steps[0].timeoutMs: Too big'],
    [
      'a service name that is not one',
      input([task({ services: [{ name: 'a b', params: {}, inputMapping: {}, gracePeriodMs: 0, file: 'r/s.yml' }] })]),
      'services[0].name: a service name starts with a letter',
    ],
  ])('%s is refused with its JSON path', (_what, raw, expected) => {
    expect(refused(raw)).toContain(expected);
  });

  test('what the compiler makes is accepted as it is', () => {
    const plan = compilePlan({
      file: 'p.yml',
      text: `resources:\n- {name: repo, type: git, source: {uri: x}}\njobs:\n- name: j\n  plan:\n  - get: repo\n  - task: t\n    file: repo/ci/task.yml\n    attempts: 3\n    params: {A: "1"}\n  - load_var: v\n    file: repo/v.json\n`,
    });
    expect(parseBuildInput(JSON.parse(JSON.stringify({ plan, uploads: ['repo'], downloads: [] })))).toMatchObject({ plan });
  });
});

describe('a pipeline file (validate-pipeline, set-pipeline)', () => {
  const pipelineError = (text: string): string => {
    try {
      compilePipeline({ name: 'p', text, file: 'p.yml' });
    } catch (err) {
      return (err as Error).message;
    }
    throw new Error('the pipeline compiled');
  };
  const resource = (extra: string) =>
    `resources:\n- name: r\n  type: git\n  source: {uri: x}\n  ${extra}\njobs:\n- name: j\n  plan:\n  - get: r\n`;

  test('`check_every: 5` is said at its key, not as "a resource needs a name"', () => {
    expect(pipelineError(resource('check_every: 5'))).toBe('p.yml:5:16: resources[0].check_every: expected a string, got number 5');
  });

  test("a resource type's check_timeout that is not a string is refused, not ignored (Concourse refuses it)", () => {
    const text = `resource_types:\n- {name: t, type: registry-image, source: {repository: x}, check_timeout: 5}\n${resource('')}`;
    expect(pipelineError(text)).toBe('p.yml:2:75: resource_types[0].check_timeout: expected a string, got number 5');
  });

  test("a job's fields are said as the plan's are: what was expected and what is there", () => {
    const text = `jobs:\n- name: 123\n  plan: []\n- name: k\n  max_in_flight: "x"\n  serial_groups: [""]\n  plan: []\n`;
    expect(pipelineError(text).split('\n')).toEqual([
      'p.yml:2:9: jobs[0].name: expected a string, got number 123',
      'p.yml:5:18: jobs[1].max_in_flight: expected a number, got the string "x"',
      'p.yml:6:19: jobs[1].serial_groups[0]: a serial group needs a name',
    ]);
  });
});

describe('artifact names of get, put and mappings', () => {
  test('a get or put named `..`, `a/b` or 300 bytes is refused: its name is a directory (Concourse only warns)', () => {
    const long = 'a'.repeat(300);
    const text = `resources:\n- {name: r, type: git, source: {uri: x}}\njobs:\n- name: j\n  plan:\n  - {get: "..", resource: r}\n  - {get: a/b, resource: r}\n  - {get: ${long}, resource: r}\n  - {put: x/y, resource: r, inputs: [../z]}\n`;
    let message = '';
    try {
      compilePipeline({ name: 'p', text, file: 'p.yml' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message.split('\n')).toEqual([
      'p.yml:6:1: plan.0.get: artifact name: `..` is not a name: it would mean another directory',
      'p.yml:7:1: plan.1.get: artifact name: `a/b` contains `/`: a name becomes one directory name',
      'p.yml:8:1: plan.2.get: artifact name: a name is at most 255 bytes (it becomes a directory name); this one is 300',
      'p.yml:9:1: plan.3.put: artifact name: `x/y` contains `/`: a name becomes one directory name',
      'p.yml:9:1: plan.3.inputs[0]: artifact name: `../z` contains `/`: a name becomes one directory name',
    ]);
  });

  test("a task's input_mapping and output_mapping name artifacts too", () => {
    expect(
      compileError(
        `plan:\n- task: t\n  input_mapping: {a: ../b}\n  output_mapping: {x/y: o}\n  config: {platform: linux, run: {path: echo}}\n`,
      ).split('\n'),
    ).toEqual([
      'p.yml:2:1: plan.0.input_mapping.a: artifact name: `../b` contains `/`: a name becomes one directory name',
      'p.yml:2:1: plan.0.output_mapping.x/y: artifact name: `x/y` contains `/`: a name becomes one directory name',
    ]);
  });

  test('an empty string is said as "must not be empty", not in zod\'s words', () => {
    expect(compileError(`plan:\n- task: t\n  config: {platform: linux, run: {path: echo}, image_resource: {type: "", source: {}}}\n`)).toBe(
      'p.yml:3:71: plan[0].config.image_resource.type: must not be empty',
    );
  });
});

describe('files that never end', () => {
  test('/dev/zero as a plan, a pipeline or a task file is refused at 4 MB (it was read until 8 GB and never ended)', () => {
    expect(() => loadPlan({ file: '/dev/zero' })).toThrow(
      /^\/dev\/zero:1:1: the file is larger than 4,194,304 bytes \(4 MB\), the most a plan, pipeline, task or vars file may be/,
    );
    expect(() => readYamlFile('/dev/urandom')).toThrow(PlanError);
  });

  test('a task file for execute is strict UTF-8 as a plan file is (it was read as utf8: bad bytes became U+FFFD)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-hostile-'));
    try {
      fs.writeFileSync(path.join(dir, 't.yml'), Buffer.from('platform: linux\nrun: {path: "\xff"}\n', 'latin1'));
      expect(() => readYamlFile(path.join(dir, 't.yml'), 't.yml')).toThrow(
        't.yml:2:14: invalid UTF-8 (byte 0xff at offset 29): save the file as UTF-8',
      );
      expect(() => readYamlFile(dir)).toThrow(/EISDIR/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

test('a pipeline of 500 jobs is parsed once, not once per job (500 jobs took 38 s, 2,000 never ended)', () => {
  let text = 'resources:\n- {name: r, type: git, source: {uri: x}}\njobs:\n';
  for (let i = 0; i < 500; i++) text += `- name: j${i}\n  plan:\n  - get: r\n  - {task: t, config: {platform: linux, run: {path: echo}}}\n`;
  const parse = jest.spyOn(Parser.prototype, 'parse');
  try {
    const config = compilePipeline({ name: 'p', text, file: 'p.yml' });
    expect(config.jobs).toHaveLength(500);
    expect(parse).toHaveBeenCalledTimes(1);
  } finally {
    parse.mockRestore();
  }
  // A job's problem is still its own, at its place.
  expect(() =>
    compilePipeline({
      name: 'p',
      text: text.replace('- name: j7\n  plan:\n  - get: r', '- name: j7\n  plan:\n  - get: nope'),
      file: 'p.yml',
    }),
  ).toThrow(/^p\.yml:34:10: jobs\[7\]\.plan\[0\]\.get: .*nope/);
});

test('a 100 KB var used 30,000 times is said to be past the payload limit, not "error: Invalid string length" after 3 GB', () => {
  let text = 'plan:\n- task: t\n  config: {platform: linux, run: {path: echo}}\n  vars:\n';
  for (let i = 0; i < 30_000; i++) text += `    P${i}: ((big))\n`;
  expect(compileError(text, { big: 'x'.repeat(100_000) })).toBe(
    'p.yml:1:1: the plan is more than 128.0 MB once vars are filled in; Temporal accepts at most 2.0 MB per payload: move large data into an input with -i',
  );
  expect(jsonBytes({ a: [1, undefined, 'é\n\0', { b: undefined, c: null, d: true, e: -1.5e-7 }], 'k"ey': 'x' }, 1e9)).toBe(
    Buffer.byteLength(JSON.stringify({ a: [1, undefined, 'é\n\0', { b: undefined, c: null, d: true, e: -1.5e-7 }], 'k"ey': 'x' })),
  );
});

test("a workflow id that is a path is refused before the build: it names the build's directory and leases on a worker", () => {
  const input = { plan: { name: 'j', source: 's', plan: { kind: 'do', id: 'plan', steps: [] } } };
  expect(() => parseBuildInput(input, '../builds/build-other')).toThrow(
    "invalid build input (see docs/client.md): workflow id: `../builds/build-other` contains `/`: a name becomes one directory name (the workflow id names the build's directory on a worker)",
  );
  expect(() => parseBuildInput(input, '..')).toThrow(BuildInputError);
  expect(() => parseBuildInput(input, 'b'.repeat(300))).toThrow(/workflow id: a name is at most 255 bytes/);
  expect(parseBuildInput(input, 'build-p+3f2a:j:7')).toMatchObject({ uploads: [] });
});

test('a text a Source accepted is read again as it read it, without comparing every pair of keys (validate-pipeline --output, get-pipeline --json)', () => {
  const keys = Array.from({ length: 30_000 }, (_, i) => `k${i}: 1`).join(', ');
  const text = `base: &b {x: 1}\nm: {<<: *b, y: 2}\nbig: {${keys}}\n`;
  const src = new Source('p.yml', text);
  expect(src.issues).toEqual([]);
  expect(YAML.parse(text, ACCEPTED_YAML_OPTIONS)).toEqual(src.value);
});

describe('the input of a buildPart child workflow, which any Temporal client can start too (parsePartInput)', () => {
  // As the fanout fixture's build made it (test/fixtures/histories/fanout-part.json).
  const part = (o: Record<string, unknown> = {}, frame: Record<string, unknown> = {}) => ({
    buildId: 'fixture-fanout',
    runId: '01a2354d-36d0-7c22-8b6f-235c0bbb8713',
    plan: 'fanout',
    taskQueue: 'causeway.worker.fixtures',
    workerTags: [],
    releasesArtifacts: false,
    servicesBase: 0,
    frame: { artifacts: {}, locals: {}, runKey: '1', parent: 'plan.0', deadlines: [], ...frame },
    list: {
      kind: 'steps',
      parent: 'plan.0',
      steps: [{ kind: 'task', id: 'plan.0.in_parallel.7', task: 't', config: { run: { path: 'true', args: [] } } }],
    },
    limit: 100,
    failFast: false,
    ...o,
  });
  const refusedBy = (parent: string | undefined, raw: unknown): string => {
    try {
      parsePartInput(raw, parent);
    } catch (err) {
      expect(err).toBeInstanceOf(BuildInputError);
      return (err as Error).message;
    }
    throw new Error('accepted');
  };
  const refused = (raw: unknown) => refusedBy('fixture-fanout', raw);

  test('the input a build makes is accepted as it is, defaults filled in as the build input has them', () => {
    const parsed = parsePartInput(JSON.parse(JSON.stringify(part())), 'fixture-fanout');
    expect(parsed).toMatchObject(part());
    expect(parsed.list.kind === 'steps' && parsed.list.steps[0]).toMatchObject({ params: {}, privileged: false });
  });

  test('only the build it names may start it', () => {
    expect(refusedBy(undefined, part())).toBe(
      'invalid buildPart input (a part is started by its build only): buildId: `fixture-fanout` is not the build that started this part (none did)',
    );
    expect(refusedBy('other-build', part())).toMatch(/buildId: `fixture-fanout` is not the build that started this part \(other-build\)/);
  });

  test('ids and names that become directories, and steps, are checked as in a build input', () => {
    const message = refusedBy(
      '../b',
      part({ buildId: '../b', runId: 'r/1' }, { runKey: '..', artifacts: { 'a/b': { kind: 'dir', worker: 'w', path: '/x' } } }),
    );
    expect(message).toContain('buildId: `../b` contains `/`');
    expect(message).toContain('runId: `r/1` contains `/`');
    expect(message).toContain('frame.runKey: `..` is not a name');
    expect(message).toContain('frame.artifacts.a/b: `a/b` contains `/`');
    const badStep = { kind: 'task', id: 'a..b', task: 't', config: { run: { path: 'true', args: [] } } };
    expect(refused(part({ list: { kind: 'steps', parent: 'plan.0', steps: [badStep] } }))).toContain(
      'list.steps[0].id: `a..b` is not a step id',
    );
    expect(refused(part({ limit: 0 }))).toContain('limit: Too small');
    expect(refused(part({ list: { kind: 'steps', parent: 'plan.0', steps: [{ kind: 'rm -rf' }] } }))).toContain('list.steps[0].kind');
  });

  test('an across slice runs at most as many iterations as a build may', () => {
    const step = { kind: 'task', id: 'plan.0', task: 't', config: { run: { path: 'true', args: [] } } };
    const list = {
      kind: 'across',
      step,
      depth: 0,
      bindings: [],
      indices: [],
      values: [Array(1000).fill(1), Array(1000).fill(1)],
      offset: 0,
    };
    expect(refused(part({ list }))).toMatch(/list\.values: `across` runs this step 1,000,000 times/);
  });

  test('steps nested 20,000 deep are refused before zod recurses into them', () => {
    let deep: Record<string, unknown> = { kind: 'task', id: 'x', task: 't', config: { run: { path: 'true', args: [] } } };
    for (let i = 0; i < 20_000; i++) deep = { kind: 'try', id: `s${i}`, step: deep };
    expect(refused(part({ list: { kind: 'steps', parent: 'plan.0', steps: [deep] } }))).toMatch(/steps nest more than 128 levels deep/);
  });
});
