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
  it('walks objects and arrays, leaving keys alone', () => {
    const r = interpolate({ '((k))': ['((v))', { deep: 'a-((v))' }], n: 1 }, from({ k: 'K', v: 'V' }));
    expect(r.value).toEqual({ '((k))': ['V', { deep: 'a-V' }], n: 1 });
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
  it('interpolates a map that only looks like it has hooks', () => {
    expect(interpolateLocal({ hooks: '((.:h))' }, { h: 1 })).toEqual({ hooks: 1 });
  });
});
