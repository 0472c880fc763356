// The git base resource type speaking the protocol (JSON on stdin/stdout) against local
// repositories: check with a version, tag_filter, and what a bad source says.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const TYPE = path.resolve(__dirname, '../../resources/git');
let tmp: string;
let bare: string;
const commits: string[] = [];

const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd, encoding: 'utf8' }).trim();

function script(name: 'check' | 'in' | 'out', request: unknown, arg?: string): { code: number | null; out: unknown; err: string } {
  const r = spawnSync(path.join(TYPE, name), arg ? [arg] : [], { input: JSON.stringify(request), encoding: 'utf8' });
  return { code: r.status, out: r.stdout ? JSON.parse(r.stdout) : undefined, err: r.stderr };
}

beforeAll(() => {
  if (!fs.existsSync(path.resolve(__dirname, '../../dist/resources/src/git.js')))
    throw new Error('run `npm run build` first: the base resource types run from dist/');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-git-resource-'));
  const work = path.join(tmp, 'work');
  fs.mkdirSync(work);
  git(work, 'init', '-q', '-b', 'main');
  for (const [i, tag] of [
    [1, 'v1.0.0'],
    [2, 'rc-1'],
    [3, 'v1.1.0'],
  ] as const) {
    fs.writeFileSync(path.join(work, 'f'), `${i}\n`);
    git(work, 'add', '.');
    git(work, 'commit', '-q', '-m', `c${i}`);
    git(work, 'tag', tag);
    commits.push(git(work, 'rev-parse', 'HEAD'));
  }
  bare = path.join(tmp, 'repo.git');
  git(tmp, 'clone', '-q', '--bare', work, bare);
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('check without a version gives the newest commit; with one, it and every newer commit', () => {
  const source = { uri: `file://${bare}`, branch: 'main' };
  expect(script('check', { source }).out).toEqual([{ ref: commits[2] }]);
  expect(script('check', { source, version: { ref: commits[0] } }).out).toEqual(commits.map((ref) => ({ ref })));
});

test('tag_filter: versions are the matching tags, oldest first, and in fetches the tag', () => {
  const source = { uri: `file://${bare}`, tag_filter: 'v*' };
  expect(script('check', { source }).out).toEqual([{ ref: commits[2], tag: 'v1.1.0' }]);
  expect(script('check', { source, version: { ref: commits[0], tag: 'v1.0.0' } }).out).toEqual([
    { ref: commits[0], tag: 'v1.0.0' },
    { ref: commits[2], tag: 'v1.1.0' },
  ]);
  const dest = path.join(tmp, 'dest');
  const r = script('in', { source, version: { ref: commits[0], tag: 'v1.0.0' } }, dest);
  expect(r.code).toBe(0);
  expect(fs.readFileSync(path.join(dest, 'f'), 'utf8')).toBe('1\n');
  expect(fs.readFileSync(path.join(dest, '.git', 'ref'), 'utf8')).toBe('v1.0.0\n');
});

test('a bad source or an unreachable repository fails with a message, and never shows the password', () => {
  const bad = script('check', { source: { branch: 'main' } });
  expect(bad.code).toBe(1);
  expect(bad.err).toMatch(/git resource: invalid source: uri:/);
  const unreachable = script('check', { source: { uri: 'https://127.0.0.1:9/nothing.git', username: 'u', password: 's3cret/pw@x' } });
  expect(unreachable.code).toBe(1);
  expect(unreachable.err).toMatch(/git resource: git clone failed/);
  expect(unreachable.err).not.toMatch(/s3cret/);
});
