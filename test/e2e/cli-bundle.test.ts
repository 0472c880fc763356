// bin/causeway runs client commands from the bundle `npm run build` makes (docs/cli.md, "Start-up"):
// run as a program, Node starts from the bundle's startup snapshot; run by `node bin/causeway` (or
// when the snapshot does not fit the Node on PATH or NODE_OPTIONS), the bundle is compiled from
// V8's code cache. Either way the same output and exit status as dist/ as tsc writes it, the cache
// written on the first run, and dist/ itself once tsc has rewritten a bundled file since.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { requireBuiltCli } from './cli-runner';

const ROOT = path.resolve(__dirname, '../..');
const BIN = path.join(ROOT, 'bin', 'causeway');
const MAIN = path.join(ROOT, 'dist', 'cli', 'main.js');
const MANIFEST = path.join(ROOT, 'dist', 'cli', 'client.bundle.json');

let cacheRoot: string;

beforeAll(() => {
  requireBuiltCli();
  if (!fs.existsSync(MANIFEST)) throw new Error(`${MANIFEST} is missing: run \`npm run build\` (it bundles the CLI after tsc)`);
  cacheRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-cli-bundle-'));
});

afterAll(() => fs.rmSync(cacheRoot, { recursive: true, force: true }));

function causeway(entry: string, args: string[], cache: string) {
  return exec(process.execPath, [entry, ...args], cache);
}

/** bin/causeway run as a program, as a user's shell runs it. */
function program(args: string[], cache: string, env: NodeJS.ProcessEnv = {}) {
  return exec(BIN, args, cache, env);
}

function exec(file: string, args: string[], cache: string, env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(file, args, {
    cwd: ROOT,
    env: { ...process.env, CAUSEWAY_CACHE: cache, NO_COLOR: '1', ...env },
    encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const cacheFiles = (cache: string) =>
  fs.existsSync(path.join(cache, 'cli-code')) ? fs.readdirSync(path.join(cache, 'cli-code')).filter((f) => f.endsWith('.v8')) : [];
const cacheFile = (cache: string) => path.join(cache, 'cli-code', cacheFiles(cache)[0]);
/** The command lines whose compiled code the cache holds. */
const cachedRuns = (cache: string) => JSON.parse(fs.readFileSync(`${cacheFile(cache)}.runs`, 'utf8')) as string[];

test('a client command from the bundle does what it does from dist/, and writes the code cache once', () => {
  const cache = path.join(cacheRoot, 'fresh');
  const args = ['compile', 'examples/hello.yml'];
  const fromDist = causeway(MAIN, args, cache);
  expect(fromDist.status).toBe(0);
  const first = causeway(BIN, args, cache);
  expect(first).toEqual(fromDist);
  expect(cacheFiles(cache)).toEqual([expect.stringMatching(/^[0-9a-f]{32}-v[\d.]+-[\w-]+\.v8$/)]);
  const written = fs.statSync(path.join(cache, 'cli-code', cacheFiles(cache)[0])).mtimeMs;
  expect(causeway(BIN, args, cache)).toEqual(fromDist);
  expect(fs.statSync(path.join(cache, 'cli-code', cacheFiles(cache)[0])).mtimeMs).toBe(written);

  const missing = ['run', path.join(cacheRoot, 'no-such-plan.yml')];
  const failed = causeway(BIN, missing, cache);
  expect(failed).toEqual(causeway(MAIN, missing, cache));
  expect(failed.status).toBe(2);
  expect(failed.stderr).toContain('cannot read plan file');
  expect(cachedRuns(cache)).toEqual(['compile']);
});

test('the first successful run of another command line adds what it compiled to the cache, once', () => {
  const cache = path.join(cacheRoot, 'union');
  expect(causeway(BIN, ['compile', 'examples/hello.yml'], cache).status).toBe(0);
  const first = fs.statSync(cacheFile(cache));
  // A run that fails early compiled little of its command: it adds nothing.
  expect(causeway(BIN, ['compile', path.join(cacheRoot, 'no-such-plan.yml'), '-v', 'a=b'], cache).status).toBe(2);
  expect(fs.statSync(cacheFile(cache)).mtimeMs).toBe(first.mtimeMs);
  const withVar = ['compile', 'examples/hello.yml', '-v', 'a=b'];
  expect(causeway(BIN, withVar, cache).status).toBe(0);
  expect(cachedRuns(cache)).toEqual(['compile', 'compile -v']);
  const added = fs.statSync(cacheFile(cache)).mtimeMs;
  expect(added).toBeGreaterThanOrEqual(first.mtimeMs);
  expect(causeway(BIN, withVar, cache)).toEqual(causeway(MAIN, withVar, cache));
  expect(fs.statSync(cacheFile(cache)).mtimeMs).toBe(added);
  expect(cacheFiles(cache)).toHaveLength(1);
});

/** Runs `check` with a dist/ file the bundle holds newer than the bundle, as a tsc run since would leave it. */
function withStaleBundle(check: () => void): void {
  const { inputs } = JSON.parse(fs.readFileSync(MANIFEST, 'utf8')) as { inputs: string[] };
  const input = path.join(
    ROOT,
    'dist',
    inputs.find((f) => f.endsWith('commands/compile.js'))!,
  );
  const { atime, mtime } = fs.statSync(input);
  try {
    fs.utimesSync(input, atime, new Date(Date.now() + 60_000));
    check();
  } finally {
    fs.utimesSync(input, atime, mtime);
  }
}

test('once tsc rewrites a file the bundle holds, dist/ runs instead of the stale bundle', () => {
  const cache = path.join(cacheRoot, 'stale');
  withStaleBundle(() => {
    expect(causeway(BIN, ['compile', 'examples/hello.yml'], cache).status).toBe(0);
    expect(cacheFiles(cache)).toEqual([]);
  });
});

test('run as a program, a client command starts from the snapshot (no code cache) and does what dist/ does', () => {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'cli', 'client.snapshot.blob'))) throw new Error('no snapshot: run `npm run build`');
  const cache = path.join(cacheRoot, 'snapshot');
  for (const args of [
    ['compile', 'examples/hello.yml'],
    ['run', path.join(cacheRoot, 'no-such-plan.yml')],
    ['compile', 'examples/hello.yml', '-v', 'a=b', '--json'],
  ]) {
    const r = program(args, cache);
    expect(r).toEqual(causeway(MAIN, args, cache));
  }
  // Through a link to it, as npm installs it in node_modules/.bin.
  const link = path.join(fs.mkdtempSync(path.join(cacheRoot, 'bin-')), 'causeway');
  fs.symlinkSync(BIN, link);
  expect(exec(link, ['compile', 'examples/hello.yml'], cache)).toEqual(causeway(MAIN, ['compile', 'examples/hello.yml'], cache));
  expect(cacheFiles(cache)).toEqual([]);
  // Not a client command, or its help: bin/causeway's JavaScript, from dist/.
  expect(program(['--version'], cache)).toEqual(causeway(MAIN, ['--version'], cache));
  expect(program(['run', '--help'], cache)).toEqual(causeway(MAIN, ['run', '--help'], cache));
});

test('a Node on PATH other than the one that wrote the snapshot, or NODE_OPTIONS, runs the bundle from the code cache', () => {
  const args = ['compile', 'examples/hello.yml'];
  const expected = causeway(MAIN, args, path.join(cacheRoot, 'unused'));
  const withOptions = path.join(cacheRoot, 'node-options');
  expect(program(args, withOptions, { NODE_OPTIONS: '--max-old-space-size=2048' })).toEqual(expected);
  expect(cacheFiles(withOptions)).toHaveLength(1);

  const bin = fs.mkdtempSync(path.join(cacheRoot, 'path-'));
  fs.writeFileSync(path.join(bin, 'node'), `#!/bin/sh\nexec ${process.execPath} "$@"\n`, { mode: 0o755 });
  const otherNode = path.join(cacheRoot, 'other-node');
  expect(program(args, otherNode, { PATH: `${bin}:${process.env.PATH}` })).toEqual(expected);
  expect(cacheFiles(otherNode)).toHaveLength(1);
});

test('once tsc rewrites a file the bundle holds, the snapshot runs dist/ instead', () => {
  const args = ['compile', path.join(cacheRoot, 'no-such-plan.yml')];
  const cache = path.join(cacheRoot, 'snapshot-stale');
  withStaleBundle(() => {
    expect(program(args, cache)).toEqual(causeway(MAIN, args, cache));
    // Node's module debug log shows dist/ loaded (the snapshot itself loads no file).
    expect(program(args, cache, { NODE_DEBUG: 'module' }).stderr).toContain(path.join(ROOT, 'dist', 'cli', 'main.js'));
  });
});
