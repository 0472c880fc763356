import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PlanError, loadVarFiles, parseDuration, parseMemory, parseTaskConfig, parseVarFlags } from '../../schemas';

describe('parseDuration', () => {
  it.each([
    ['90s', 90_000],
    ['1h30m', 5_400_000],
    ['500ms', 500],
    ['1.5h', 5_400_000],
    ['2m3s', 123_000],
    ['1500us', 2],
    ['0', 0],
    ['2562047h', 2562047 * 3_600_000],
  ])('%s = %d ms', (s, ms) => expect(parseDuration(s)).toBe(ms));
  it.each(['', '5', '5 minutes', '1d', 'h', '-5s', '1h 30m', '2562048h', '99999999999h'])('rejects %j', (s) => {
    expect(() => parseDuration(s)).toThrow(/invalid duration/);
  });
});

describe('parseMemory', () => {
  it.each<[number | string, number]>([
    [1048576, 1048576],
    ['1048576', 1048576],
    ['1GB', 1024 ** 3],
    ['512MB', 512 * 1024 ** 2],
    ['256M', 256 * 1024 ** 2],
    ['1Gi', 1024 ** 3],
    ['1GiB', 1024 ** 3],
    ['64kb', 64 * 1024],
    ['1.5G', 1.5 * 1024 ** 3],
  ])('%s = %d bytes', (v, bytes) => expect(parseMemory(v)).toBe(bytes));
  it.each<number | string>(['lots', '1XB', 1.5, -1, 1e30, '99999999999T', '1'.repeat(30)])('rejects %j', (v) =>
    expect(() => parseMemory(v)).toThrow(/invalid memory size/),
  );
});

describe('parseVarFlags', () => {
  it('keeps values as strings, as fly -v', () => {
    expect(parseVarFlags(['a=1', 'b=x=y', 'c='])).toEqual({ a: '1', b: 'x=y', c: '' });
  });
  it('sets fields for dotted names', () => {
    expect(parseVarFlags(['db.user=u', 'db.pass=p'])).toEqual({ db: { user: 'u', pass: 'p' } });
  });
  it.each(['x', '=v', 'src:x=1'])('rejects %j', (flag) => {
    expect(() => parseVarFlags([flag])).toThrow(`-v needs name=value, got \`${flag}\``);
  });
  it('parses -y values as YAML, winning over -v, as fly -y', () => {
    expect(parseVarFlags(['n=1', 'v=x'], ['n=1', 'v={"version":"g1"}', 'none=null', 'e=every'])).toEqual({
      n: 1,
      v: { version: 'g1' },
      none: null,
      e: 'every',
    });
  });
  it('names a -y value that is not YAML', () => {
    expect(() => parseVarFlags([], ['m={a: '])).toThrow(/^-y m=\{a: : the value is not valid YAML/);
    expect(() => parseVarFlags([], ['m'])).toThrow('-y needs name=value, got `m`');
  });
});

describe('loadVarFiles', () => {
  const dir = mkdtempSync(join(tmpdir(), 'causeway-vars-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  it('merges maps, later files winning, keeping YAML types', () => {
    const a = file('a.yml', 'n: 1\nobj: {x: 1}\nkeep: k\n');
    const b = file('b.yml', 'n: 2\n');
    expect(loadVarFiles([a, b])).toEqual({ n: 2, obj: { x: 1 }, keep: 'k' });
  });
  it('reports YAML errors with file and line', () => {
    const bad = file('bad.yml', 'a: 1\nb: [\n');
    expect(() => loadVarFiles([bad])).toThrow(PlanError);
    expect(() => loadVarFiles([bad])).toThrow(new RegExp(`${bad}:\\d+:\\d+: invalid YAML`));
  });
  it('rejects a file that is not a map', () => {
    expect(() => loadVarFiles([file('list.yml', '- a\n')])).toThrow(/must be a map/);
  });
  it('names a missing file', () => {
    expect(() => loadVarFiles([join(dir, 'nope.yml')])).toThrow(/cannot read vars file .*nope\.yml/);
  });
  it('refuses a file past 4 MB at the limit, naming it, as a plan file (-l /dev/zero was read until memory ran out)', () => {
    expect(() => loadVarFiles(['/dev/zero'])).toThrow(PlanError);
    expect(() => loadVarFiles(['/dev/zero'])).toThrow(/^\/dev\/zero:1:1: the file is larger than 4,194,304 bytes \(4 MB\)/);
    const big = file('big.yml', `v: ${'x'.repeat(4 * 1024 * 1024)}\n`);
    expect(() => loadVarFiles([big])).toThrow(new RegExp(`^${big}:1:1: the file is larger than 4,194,304 bytes`));
  });
  it('reads a pipe, as fly does for -l <(command)', () => {
    const fifo = join(dir, 'vars.fifo');
    execFileSync('mkfifo', [fifo]);
    const writer = spawn('sh', ['-c', `printf 'from: pipe\\n' > ${fifo}`]);
    try {
      expect(loadVarFiles([fifo])).toEqual({ from: 'pipe' });
    } finally {
      writer.kill();
    }
  });
  it('names a directory it cannot read', () => {
    expect(() => loadVarFiles([dir])).toThrow(new RegExp(`^cannot read vars file ${dir}: EISDIR`));
  });
});

describe('parseTaskConfig', () => {
  const text = `
platform: linux
image_resource:
  type: registry-image
  source: {repository: golang, tag: ((go))}
inputs:
- name: src
- name: cache
  path: c
  optional: true
outputs: [{name: bin}]
caches: [{path: .cache}]
params:
  S: str
  N: 1
  B: true
  O: {a: 1}
  L: [1, 2]
  Z: null
run:
  path: sh
  args: [-c, make, 3]
  dir: src
container_limits: {cpu: 512, memory: 1GB}
`;
  it('parses a full task file and stringifies params', () => {
    expect(parseTaskConfig({ text, file: 'task.yml', vars: { go: '1.22' } })).toEqual({
      platform: 'linux',
      image_resource: { type: 'registry-image', source: { repository: 'golang', tag: '1.22' } },
      inputs: [{ name: 'src' }, { name: 'cache', path: 'c', optional: true }],
      outputs: [{ name: 'bin' }],
      caches: [{ path: '.cache' }],
      params: { S: 'str', N: '1', B: 'true', O: '{"a":1}', L: '[1,2]', Z: '' },
      run: { path: 'sh', args: ['-c', 'make', '3'], dir: 'src' },
      container_limits: { cpu: 512, memory: 1024 ** 3 },
    });
  });
  it('defaults the lists and args', () => {
    expect(parseTaskConfig({ text: 'run: {path: ls}', file: 't.yml' })).toEqual({
      inputs: [],
      outputs: [],
      caches: [],
      params: {},
      run: { path: 'ls', args: [] },
    });
  });
  it('reports every problem with position, path and a suggestion', () => {
    const bad = 'platfrom: linux\ninputs:\n- name: a\n- name: a\noutputs:\n- {name: o, pth: x}\ncontainer_limits: {memory: lots}\n';
    let err: PlanError | undefined;
    try {
      parseTaskConfig({ text: bad, file: 't.yml' });
    } catch (e) {
      err = e as PlanError;
    }
    expect(err).toBeInstanceOf(PlanError);
    expect(err!.message.split('\n')).toEqual([
      't.yml:1:1: run: missing required key `run` (a map)',
      't.yml:1:1: platfrom: unknown key `platfrom` in task config; did you mean `platform`?',
      't.yml:4:9: inputs[1].name: duplicate input name `a`',
      't.yml:6:13: outputs[0].pth: unknown key `pth` in `outputs`; did you mean `path`?',
      't.yml:7:28: container_limits.memory: invalid memory size `lots`: expected bytes or a size like "512MB", "1GB", "256M", "1Gi"',
    ]);
    expect(err!.issues[2]).toEqual({ file: 't.yml', line: 4, column: 9, path: 'inputs[1].name', message: 'duplicate input name `a`' });
  });
  it('reports undefined vars', () => {
    expect(() => parseTaskConfig({ text: 'run: {path: ((p))}', file: 't.yml' })).toThrow('t.yml:1:13: run.path: undefined var `p`');
  });
  it('requires run.path', () => {
    expect(() => parseTaskConfig({ text: 'run: {args: [x]}', file: 't.yml' })).toThrow('t.yml:1:6: run.path: missing required key `path`');
  });
});
