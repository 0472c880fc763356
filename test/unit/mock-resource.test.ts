// The mock base resource type (Concourse's mock-resource, which testflight's fixtures use)
// speaking the protocol: the request JSON on stdin, the response JSON on stdout, exit 1 on error.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { check, isPrivileged, SourceSchema } from '../../resources/src/mock';

const TYPE = path.resolve(__dirname, '../../resources/mock');
let tmp: string;

function script(name: 'check' | 'in' | 'out', request: unknown, arg?: string, env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(path.join(TYPE, name), arg ? [arg] : [], {
    input: JSON.stringify(request),
    encoding: 'utf8',
    env: { ...process.env, MIRRORED_VERSION: '', ...env },
  });
  return { code: r.status, out: r.stdout ? (JSON.parse(r.stdout) as unknown) : undefined, err: r.stderr };
}

beforeAll(() => {
  if (!fs.existsSync(path.resolve(__dirname, '../../dist/resources/src/mock.js')))
    throw new Error('run `npm run build` first: the base resource types run from dist/');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-mock-resource-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

// The test runs as root or not; mock reports privileged only for root (outside a user namespace).
const priv = (v: Record<string, string>) => (process.getuid?.() === 0 ? { ...v, privileged: 'true' } : v);

describe('check', () => {
  test('no version: the initial version ("mock", initial_version, or none with no_initial_version)', () => {
    expect(script('check', { source: {} }).out).toEqual([priv({ version: 'mock' })]);
    expect(script('check', { source: { initial_version: 'v0' } }).out).toEqual([priv({ version: 'v0' })]);
    expect(script('check', { source: { no_initial_version: true, initial_version: 'v0' } }).out).toEqual([]);
    expect(script('check', { source: {} }, undefined, { MIRRORED_VERSION: 'from-image' }).out).toEqual([priv({ version: 'from-image' })]);
  });

  test('the version given is the version returned (check-resource --from version:X makes X); force_version wins', () => {
    expect(script('check', { source: { no_initial_version: true }, version: { version: 'x' } }).out).toEqual([priv({ version: 'x' })]);
    expect(script('check', { source: { force_version: 'f' }, version: { version: 'x' } }).out).toEqual([priv({ version: 'f' })]);
  });

  test('check_failure fails with its message; check_delay waits first', async () => {
    const r = script('check', { source: { check_failure: 'nope' } });
    expect(r.code).toBe(1);
    expect(r.err).toContain('intentionally failing to check: nope');
    const waits: number[] = [];
    const sleep = (ms: number) => {
      waits.push(ms);
      return Promise.resolve();
    };
    expect(await check(SourceSchema.parse({ check_delay: '1.5s' }), null, { privileged: false, sleep, env: {} })).toEqual([
      { version: 'mock' },
    ]);
    expect(waits).toEqual([1500]);
  });

  test('an unknown source field or a bad check_delay is refused, as mock-resource decodes strictly', () => {
    expect(script('check', { source: { bogus: 1 } }).err).toMatch(/invalid source: .*bogus/);
    expect(script('check', { source: { check_delay: 'soon' } }).err).toContain('malformed check_delay duration `soon`');
  });

  test('privileged only as root with uid 0 mapped to 0, and then every version says so', async () => {
    expect(await isPrivileged(0, '         0          0 4294967295\n')).toBe(true);
    expect(await isPrivileged(0, '         0     100000      65536\n')).toBe(false);
    expect(await isPrivileged(1000, '         0          0 4294967295\n')).toBe(false);
    expect(await check(SourceSchema.parse({}), { version: 'a' }, { privileged: true })).toEqual([{ version: 'a', privileged: 'true' }]);
  });
});

describe('in', () => {
  test('writes version and privileged, create_files with params merged over source, and returns the metadata', () => {
    const dest = path.join(tmp, 'in');
    const metadata = [{ name: 'foo', value: 'bar' }];
    const r = script(
      'in',
      {
        source: { create_files: { 'a.yml': 'a: 1\n', 'sub/b.json': { b: [1] }, 'c.txt': 'source' }, metadata, log: 'hello' },
        version: { version: 'v1' },
        params: { create_files_via_params: { 'c.txt': 'params', 'task.yml': 'x: START_VAR y END_VAR' } },
      },
      dest,
    );
    expect(r.code).toBe(0);
    expect(r.out).toEqual({ version: { version: 'v1' }, metadata });
    expect(r.err).toContain('hello');
    const read = (f: string) => fs.readFileSync(path.join(dest, f), 'utf8');
    expect(read('version')).toBe('v1\n');
    expect(read('privileged')).toBe(`${process.getuid?.() === 0}\n`);
    expect(read('a.yml')).toBe('a: 1\n');
    expect(read('sub/b.json')).toBe('{"b":[1]}');
    expect(read('c.txt')).toBe('params');
    expect(read('task.yml')).toBe('x: (( y ))');
  });

  test('mirror_self gives metadata.json with MIRRORED_VERSION and an empty rootfs/', () => {
    const dest = path.join(tmp, 'mirror');
    expect(script('in', { source: {}, version: { version: 'm1' }, params: { mirror_self_via_params: true } }, dest).code).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(dest, 'metadata.json'), 'utf8'))).toEqual({ env: ['MIRRORED_VERSION=m1'], user: 'root' });
    expect(fs.readdirSync(path.join(dest, 'rootfs'))).toEqual([]);
  });

  test('a create_files path outside the destination, or an unknown param, is refused', () => {
    const escape = script('in', { source: { create_files: { '../out': 'x' } }, version: { version: 'v' } }, path.join(tmp, 'esc'));
    expect(escape.code).toBe(1);
    expect(escape.err).toContain('`../out` is outside the destination directory');
    expect(fs.existsSync(path.join(tmp, 'out'))).toBe(false);
    expect(script('in', { source: {}, version: { version: 'v' }, params: { nope: 1 } }, path.join(tmp, 'p')).err).toMatch(
      /invalid params: .*nope/,
    );
  });
});

describe('out', () => {
  test('params.version or the contents of params.file is the new version, with the metadata', () => {
    const dir = path.join(tmp, 'out-src');
    fs.mkdirSync(path.join(dir, 'a'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'a', 'v'), 'from-file');
    const metadata = [{ name: 'k', value: 'v' }];
    expect(script('out', { source: { metadata }, params: { version: 'p1' } }, dir).out).toEqual({
      version: priv({ version: 'p1' }),
      metadata,
    });
    expect(script('out', { source: {}, params: { file: 'a/v' } }, dir).out).toEqual({
      version: priv({ version: 'from-file' }),
      metadata: [],
    });
  });

  test('no version, or a file that is not there, fails saying so', () => {
    const none = script('out', { source: {}, params: {} }, tmp);
    expect(none.code).toBe(1);
    expect(none.err).toContain('no version specified');
    expect(script('out', { source: {}, params: { file: 'missing' } }, tmp).err).toContain(
      'error reading version from file missing: ENOENT',
    );
  });
});
