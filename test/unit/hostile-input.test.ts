// Hostile YAML files (schemas/errors.ts, Source): each is refused before the parser spends
// seconds, gigabytes or its stack on it, with FILE:LINE:COL, what is wrong and what to do.
import { compilePlan, parseTaskConfig } from '../../schemas';
import { MAX_YAML_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES, Source } from '../../schemas/errors';

const TASK = '{task: t, config: {platform: linux, run: {path: echo}}}';

function compileError(text: string): string {
  try {
    compilePlan({ file: 'p.yml', text });
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
    const started = Date.now();
    const message = compileError(`plan: []\nx: [${'1,'.repeat(1_500_000)}1]\n`);
    expect(message).toMatch(/^p\.yml:2:\d+: invalid YAML: the file holds more than 200,000 values by here/);
    // The parser took 24 s and 2 GB for such a file; the lexer stops at the limit. Not a timing
    // assertion on the engine's speed: only that the parser never ran.
    expect(Date.now() - started).toBeLessThan(20_000);
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
