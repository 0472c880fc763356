import { interpolate, interpolateLocal, parseVarRef, type VarRef } from '../../schemas/interpolate';

const from = (vars: Record<string, unknown>) => (ref: VarRef) =>
  ref.path[0] in vars ? { found: true as const, value: vars[ref.path[0]] } : { found: false as const };

describe('parseVarRef', () => {
  it('parses a plain name', () => {
    expect(parseVarRef('name')).toEqual({ path: ['name'], raw: 'name' });
  });
  it('parses fields and strips parentheses and spaces', () => {
    expect(parseVarRef('(( name.field.sub ))')).toEqual({ path: ['name', 'field', 'sub'], raw: 'name.field.sub' });
  });
  it('parses a source', () => {
    expect(parseVarRef('vault:secret/x.password')).toEqual({
      source: 'vault',
      path: ['secret/x', 'password'],
      raw: 'vault:secret/x.password',
    });
  });
  it('parses local vars', () => {
    expect(parseVarRef('.:version.major')).toEqual({ source: '.', path: ['version', 'major'], raw: '.:version.major' });
  });
  it('keeps dots and colons inside quotes', () => {
    expect(parseVarRef('"a.b".c')).toEqual({ path: ['a.b', 'c'], raw: '"a.b".c' });
    expect(parseVarRef('"x:y"')).toEqual({ path: ['x:y'], raw: '"x:y"' });
  });
});

describe('interpolate', () => {
  it('replaces a whole scalar with the typed value', () => {
    expect(interpolate('((obj))', from({ obj: { a: [1] } })).value).toEqual({ a: [1] });
    expect(interpolate('((n))', from({ n: 3 })).value).toBe(3);
    expect(interpolate('((b))', from({ b: false })).value).toBe(false);
  });
  it('stringifies inside a longer string', () => {
    const r = interpolate('v=((n)) o=((obj)) s=((s)) z=((z))', from({ n: 3, obj: { a: 1 }, s: 'x', z: null }));
    expect(r.value).toBe('v=3 o={"a":1} s=x z=');
  });
  it('walks objects and arrays, keys too', () => {
    const r = interpolate({ '((k))': ['((v))', { deep: 'a-((v))', '((v))-x': 1 }], n: 1 }, from({ k: 'K', v: 'V' }));
    expect(r.value).toEqual({ K: ['V', { deep: 'a-V', 'V-x': 1 }], n: 1 });
    expect(r.problems).toEqual([]);
  });
  it('reports every missing ref and leaves it in place', () => {
    const r = interpolate(['((a)) ((b))', '((c.d))', '((ok))'], from({ ok: 1 }));
    expect(r.value).toEqual(['((a)) ((b))', '((c.d))', 1]);
    expect(r.missing.map((m) => m.raw)).toEqual(['a', 'b', 'c.d']);
  });
  it('does not re-interpolate a substituted value', () => {
    expect(interpolate('((a))', from({ a: '((b))', b: 'no' })).value).toBe('((b))');
  });
});

// Concourse's vars/template_test.go, the cases with vars in map keys: its Template walks keys
// as it walks values (vars/template.go, interpolator.Interpolate).
describe('vars in map keys, as Concourse', () => {
  const keys = (value: unknown, vars: Record<string, unknown>) => interpolate(value, from(vars));

  it('can interpolate multiple values into a byte slice', () => {
    expect(keys({ '((key))': '((value))' }, { key: 'foo', value: 'bar' }).value).toEqual({ foo: 'bar' });
  });
  it('return errors if there are missing variable keys and ExpectAllKeys is true', () => {
    const r = keys(
      { '((key4))_array': ['((key_in_array))'], '((key))': '((key2))', '((key3))': 2, 'dup-key': '((key3))' },
      { key3: 'foo' },
    );
    expect([...new Set(r.missing.map((m) => m.raw))].sort()).toEqual(['key', 'key2', 'key4', 'key_in_array']);
  });
  it('return errors if there are multiple variables with same path and ExpectAllKeys is true', () => {
    const r = interpolate({ '((var1:key1))': '((var2:key1))' }, () => ({ found: false }));
    expect(r.missing.map((m) => m.raw).sort()).toEqual(['var1:key1', 'var2:key1']);
  });
  it('does not return error if there are missing variable keys and ExpectAllKeys is false', () => {
    expect(keys({ '((key))': '((key2))', '((key3))': 2 }, { key3: 'foo' }).value).toEqual({ '((key))': '((key2))', foo: 2 });
  });
  it('When variable has nil as value for key: uses null', () => {
    expect(keys({ '((key))': 'value' }, { key: null }).value).toEqual({ null: 'value' });
  });
  it('can interpolate keys with dashes and underscores into a byte slice', () => {
    expect(
      keys({ '((with-a-dash))': '((with_an_underscore))' }, { 'with-a-dash': 'dash', with_an_underscore: 'underscore' }).value,
    ).toEqual({
      dash: 'underscore',
    });
  });
  it('can interpolate values into the middle of a key', () => {
    expect(keys({ '((iaas))_cpi': 'props' }, { iaas: 'aws' }).value).toEqual({ aws_cpi: 'props' });
  });
  it('can interpolate the same value multiple times into a byte slice', () => {
    expect(keys({ '((key))': '((key))' }, { key: 'foo' }).value).toEqual({ foo: 'foo' });
  });
  it('a key that is one var takes a number or a boolean as YAML writes it', () => {
    expect(keys({ '((n))': 'a', '((f))': 'b', '((t))': 'c' }, { n: 1, f: 1.5, t: true }).value).toEqual({ 1: 'a', '1.5': 'b', true: 'c' });
  });
  it('inside a longer key, only a string or a whole number goes (raises error when interpolating an unsupported type in the middle of a string)', () => {
    expect(keys({ 'port-((p))': 'x' }, { p: 4222 }).value).toEqual({ 'port-4222': 'x' });
    for (const [value, kind] of [
      [2.717, 'a number with a fraction'],
      [true, 'a boolean'],
      [null, 'null'],
      [{ a: 1 }, 'a map'],
    ] as const) {
      const r = keys({ 'e-((eulers_number))': 'x' }, { eulers_number: value });
      expect(r.problems).toEqual([
        `var \`eulers_number\` in the key \`e-((eulers_number))\` is ${kind}: inside a longer key only a string or a whole number can go`,
      ]);
      expect(r.value).toEqual({ 'e-((eulers_number))': 'x' });
    }
  });
  it('a map or a list cannot be a key (Concourse panics: a Go map key must be hashable)', () => {
    const r = keys({ '((m))': 1, '((l))': 2 }, { m: { a: 1 }, l: [1] });
    expect(r.problems).toEqual([
      'the key `((m))` is a map: a map key is a string, a number, a boolean or null',
      'the key `((l))` is a list: a map key is a string, a number, a boolean or null',
    ]);
  });
  it('an interpolated key wins over a key written as it is, in either order (Go map order does not matter)', () => {
    expect(keys({ b: 'literal', '((a))': 'from a' }, { a: 'b' }).value).toEqual({ b: 'from a' });
    expect(keys({ '((a))': 'from a', b: 'literal' }, { a: 'b' }).value).toEqual({ b: 'from a' });
  });
  it('two interpolated keys that become one are an error (Concourse keeps either by chance)', () => {
    const r = keys({ '((a))': 1, '((c))': 2 }, { a: 'x', c: 'x' });
    expect(r.problems).toEqual(['the keys `((a))` and `((c))` both become `x`: Concourse keeps one of them by chance']);
    expect(r.value).toEqual({ x: 1 });
  });
  it('a key `__proto__` stays a key', () => {
    const r = keys({ '((p))': { polluted: true } }, { p: '__proto__' });
    expect(Object.keys(r.value as object)).toEqual(['__proto__']);
    expect((r.value as { polluted?: boolean }).polluted).toBeUndefined();
  });
});

describe('interpolateLocal', () => {
  it('resolves local vars with fields and leaves other refs as text', () => {
    const v = interpolateLocal({ a: '((.:v.major))', b: '((.:list))', c: 'x-((other))' }, { v: { major: 2 }, list: [1, 2] });
    expect(v).toEqual({ a: 2, b: [1, 2], c: 'x-((other))' });
  });
  it('throws listing every missing local var', () => {
    expect(() => interpolateLocal(['((.:a))', 'x ((.:b.c))'], {})).toThrow('undefined local vars: ((.:a)), ((.:b.c))');
  });
  it('leaves hooks and nested steps of a compiled step for when they run', () => {
    const step = {
      kind: 'task',
      id: 'plan.0',
      task: 't',
      params: { V: '((.:v))' },
      hooks: { ensure: { kind: 'task', id: 'plan.0.ensure', params: { W: '((.:later))' } } },
    };
    expect(interpolateLocal(step, { v: 'x' })).toEqual({ ...step, params: { V: 'x' } });
    const doStep = { kind: 'do', id: 'plan', steps: [{ kind: 'task', id: 'plan.0', file: '((.:later))' }] };
    expect(interpolateLocal(doStep, {})).toEqual(doStep);
  });
  it('keeps the env vars and args of a task step strings', () => {
    const step = {
      kind: 'task',
      id: 'plan.0',
      params: { O: '((.:o))', N: '((.:n))' },
      config: { params: { Z: '((.:z))' }, run: { path: 'x', args: ['((.:n))', '((.:o))'] } },
    };
    expect(interpolateLocal(step, { o: { a: 1 }, n: 2, z: null })).toEqual({
      kind: 'task',
      id: 'plan.0',
      params: { O: '{"a":1}', N: '2' },
      config: { params: { Z: '' }, run: { path: 'x', args: ['2', '{"a":1}'] } },
    });
  });
  it('fills in local vars in keys, of any map of a step (an across var in input_mapping, in params)', () => {
    const step = { kind: 'task', id: 'plan.0', inputMapping: { '((.:name))': 'src' }, params: { '((.:env))_URL': 'u' } };
    expect(interpolateLocal(step, { name: 'repo', env: 'PROD' })).toMatchObject({
      inputMapping: { repo: 'src' },
      params: { PROD_URL: 'u' },
    });
    expect(() => interpolateLocal({ '((.:m))': 1 }, { m: [1] })).toThrow(
      'the key `((.:m))` is a list: a map key is a string, a number, a boolean or null',
    );
    expect(() => interpolateLocal({ '((.:gone))': 1 }, {})).toThrow('undefined local var: ((.:gone))');
  });
  it('interpolates a map that only looks like it has hooks', () => {
    expect(interpolateLocal({ hooks: '((.:h))' }, { h: 1 })).toEqual({ hooks: 1 });
  });
});
