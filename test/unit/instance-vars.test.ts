// The ref parser and printer against fly's and atc's own test tables
// (fly/commands/internal/flaghelpers/{instance_vars,pipeline,job,resource}_flag_test.go,
// atc/pipeline_test.go), numbers as JSON numbers where fly keeps json.Number.
import {
  formatPipelineRef,
  INSTANCE_VARS_FORMAT,
  parseInstanceVarFlags,
  parseInstanceVars,
  parsePipelineChildRef,
  parsePipelineRef,
  pipelineKey,
  withInstanceVars,
} from '../../schemas/instance-vars';
import { pipelineNameOf } from '../../schemas/pipeline-api';
import { NAME_PATTERN } from '../../schemas/names';

describe('parseInstanceVars (fly InstanceVarsFlag)', () => {
  const cases: [string, string, Record<string, unknown>][] = [
    ['instance var', 'branch:master', { branch: 'master' }],
    [
      'multiple instance vars',
      'branch:master,list:[1, "2"],other:{foo:bar: 123}',
      { branch: 'master', list: [1, '2'], other: { 'foo:bar': 123 } },
    ],
    ['quoted yaml brackets/braces with "', 'field1:{a: "{", b: "["},field2:hello', { field1: { a: '{', b: '[' }, field2: 'hello' }],
    ["quoted yaml brackets/braces with '", "field1:{a: '{', b: '['},field2:hello", { field1: { a: '{', b: '[' }, field2: 'hello' }],
    ['empty values', 'field1:,field2:"",field3:null', { field1: null, field2: '', field3: null }],
    ['yaml list', "field:[{a: '{', b: '['}, 1]", { field: [{ a: '{', b: '[' }, 1] }],
    ['indexing by numerical field still uses map', 'field.0:0,field.1:1', { field: { '0': 0, '1': 1 } }],
    ['whitespace trimmed from path/values', 'branch: master, other: 123', { branch: 'master', other: 123 }],
    ['quoted fields can contain special characters', '"some.field:here":abc', { 'some.field:here': 'abc' }],
    ['special characters in quoted yaml', `field1:'foo,bar',field2:"value1:value2"`, { field1: 'foo,bar', field2: 'value1:value2' }],
    [
      'supports dot notation',
      `"my.field".subkey1."subkey:2":"my-value","my.field".other:'other-value'`,
      { 'my.field': { subkey1: { 'subkey:2': 'my-value' }, other: 'other-value' } },
    ],
    // YAML 1.1 as fly's sigs.k8s.io/yaml: `yes` is a boolean, a time of day stays a string.
    ['yaml 1.1 scalars', 'a:yes,b:1:30,c:2026-12-03', { a: true, b: '1:30', c: '2026-12-03' }],
  ];
  it.each(cases)('%s', (_desc, flag, expected) => expect(parseInstanceVars(flag)).toEqual(expected));

  it('errors as fly does', () => {
    expect(() => parseInstanceVars(`"my.field".:bad`)).toThrow(`invalid var '"my.field".': empty field`);
    expect(() => parseInstanceVars('hello:{bad: yaml')).toThrow(/^invalid value for key 'hello': /);
    expect(() => parseInstanceVars('branch=master')).toThrow(INSTANCE_VARS_FORMAT);
  });

  it('keeps __proto__ a key', () => {
    const vars = parseInstanceVars('__proto__.polluted:yes');
    expect(Object.keys(vars)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('parsePipelineRef (fly PipelineFlag)', () => {
  it('name', () => expect(parsePipelineRef('some-pipeline')).toEqual({ name: 'some-pipeline' }));
  it('instance var', () =>
    expect(parsePipelineRef('some-pipeline/branch:master')).toEqual({ name: 'some-pipeline', instanceVars: { branch: 'master' } }));
});

describe.each(['job', 'resource'] as const)('parsePipelineChildRef (fly %sFlag)', (what) => {
  const child = `some-${what}`;
  it('basic', () =>
    expect(parsePipelineChildRef(`some-pipeline/${child}`, what)).toEqual({ pipeline: { name: 'some-pipeline' }, name: child }));
  it('instance vars', () =>
    expect(parsePipelineChildRef(`some-pipeline/branch:master,foo.bar:baz/${child}`, what)).toEqual({
      pipeline: { name: 'some-pipeline', instanceVars: { branch: 'master', foo: { bar: 'baz' } } },
      name: child,
    }));
  it("instance var with a '/'", () =>
    expect(parsePipelineChildRef(`some-pipeline/branch:feature/do_things,foo:bar/${child}`, what)).toEqual({
      pipeline: { name: 'some-pipeline', instanceVars: { branch: 'feature/do_things', foo: 'bar' } },
      name: child,
    }));
  it('instance var with special chars', () =>
    expect(parsePipelineChildRef(`some-pipeline/foo."bar.baz":'abc,def:ghi'/${child}`, what)).toEqual({
      pipeline: { name: 'some-pipeline', instanceVars: { foo: { 'bar.baz': 'abc,def:ghi' } } },
      name: child,
    }));
  it.each([
    ['only pipeline specified', 'some-pipeline', `argument format should be <pipeline>/<${what}>`],
    [`${what} name not specified`, 'some-pipeline/', `argument format should be <pipeline>/<${what}>`],
    ['malformed instance var', `some-pipeline/branch=master/${child}`, INSTANCE_VARS_FORMAT],
  ])('%s', (_desc, flag, err) => expect(() => parsePipelineChildRef(flag, what)).toThrow(err));
});

describe('formatPipelineRef (atc PipelineRef.String)', () => {
  const cases: [string, Record<string, unknown> | undefined, string][] = [
    ['simple', undefined, 'some-pipeline'],
    [
      'with instance vars',
      { 'field.1': { 'subfield:1': 1, 'subfield 2': ['1', 2, { k: 'v' }] }, other: 'field' },
      `some-pipeline/"field.1"."subfield 2":["1",2,{"k":"v"}],"field.1"."subfield:1":1,other:field`,
    ],
    [
      'instance vars sorted alphabetically',
      { b: { foo: 1, bar: ['1', 2] }, a: 'hello.world' },
      `some-pipeline/a:hello.world,b.bar:["1",2],b.foo:1`,
    ],
    [
      'quotes string values that contain special characters',
      { colon: 'a:b', comma: 'a,b', space: 'a b', slash: 'a/b' },
      `some-pipeline/colon:"a:b",comma:"a,b",slash:"a/b",space:"a b"`,
    ],
    [
      'quotes string values that match special YAML values',
      { int: '123', float: '4e+6', bool: 'true', weird_bool: 'yes', empty: '' },
      `some-pipeline/bool:"true",empty:"",float:"4e+6",int:"123",weird_bool:"yes"`,
    ],
    [
      "doesn't quote non-string primitives",
      { int: 123, float: 123.456, bool: true, nil: null },
      'some-pipeline/bool:true,float:123.456,int:123,nil:null',
    ],
  ];
  it.each(cases)('%s', (_desc, instanceVars, out) => expect(formatPipelineRef({ name: 'some-pipeline', instanceVars })).toBe(out));

  it('reads back as the same ref', () => {
    for (const [, instanceVars] of cases) {
      if (!instanceVars) continue;
      const printed = formatPipelineRef({ name: 'p', instanceVars });
      expect(parsePipelineRef(printed)).toEqual({ name: 'p', instanceVars });
      expect(parsePipelineChildRef(`${printed}/unit`, 'job').pipeline).toEqual({ name: 'p', instanceVars });
    }
  });
});

describe('parseInstanceVarFlags (fly set-pipeline -i)', () => {
  it('parses YAML values and dotted names', () =>
    expect(parseInstanceVarFlags(['branch=feature/x', 'n=1', 'a.b=yes', 'a.c=[1]'])).toEqual({
      branch: 'feature/x',
      n: 1,
      a: { b: true, c: [1] },
    }));
  it('none is no instance', () => expect(parseInstanceVarFlags([])).toBeUndefined());
  it('refuses a pair without =', () =>
    expect(() => parseInstanceVarFlags(['branch'])).toThrow("invalid variable pair 'branch' (must be name=value)"));
  it('sets them over the other vars, leaf by leaf', () =>
    expect(withInstanceVars({ a: { b: 1, c: 2 }, d: 3 }, { a: { c: 'x' } })).toEqual({ a: { b: 1, c: 'x' }, d: 3 }));
});

describe('pipelineKey', () => {
  it("is a plain pipeline's name, as before instances", () => {
    expect(pipelineKey({ name: 'booklit' })).toBe('booklit');
    expect(pipelineKey({ name: 'booklit', instanceVars: {} })).toBe('booklit');
  });
  it('names an instance by a readable part of its vars and their hash', () => {
    const key = pipelineKey({ name: 'pr', instanceVars: { branch: 'feature/x' } });
    expect(key).toMatch(/^pr\+branch-feature-x-[0-9a-f]{16}$/);
    expect(pipelineNameOf(key)).toBe('pr');
  });
  it('is the same for the same vars in any order, and differs for other vars', () => {
    const a = pipelineKey({ name: 'pr', instanceVars: { x: { b: 1, a: 2 }, y: 'z' } });
    expect(pipelineKey({ name: 'pr', instanceVars: { y: 'z', x: { a: 2, b: 1 } } })).toBe(a);
    expect(pipelineKey({ name: 'pr', instanceVars: { x: { b: 1, a: 2 }, y: 'z2' } })).not.toBe(a);
    // `"1"` and 1 print apart and are different instances, as in Concourse.
    expect(pipelineKey({ name: 'pr', instanceVars: { n: '1' } })).not.toBe(pipelineKey({ name: 'pr', instanceVars: { n: 1 } }));
  });
  it('never equals a plain name, and fits ids, subjects and directory names', () => {
    const long = { branch: 'x'.repeat(5000), 'a.b': ['sp ace', '*', '>', '..', '/'] };
    for (const instanceVars of [long, { '': '' }, { '..': '..' }, { a: null }]) {
      const key = pipelineKey({ name: 'pr', instanceVars });
      expect(NAME_PATTERN.test(key)).toBe(false);
      expect(key).toMatch(/^pr\+[A-Za-z0-9-]+$/);
      expect(key.length).toBeLessThanOrEqual('pr'.length + 1 + 40 + 1 + 16);
    }
  });
});
