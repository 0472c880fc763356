// Resources in one-off builds: get (check + in), put (out + the implicit get), the git and
// time base types against local git repositories, and a resource type that is a directory
// of check/in/out executables; all through the task-running activity, on the real servers.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RESOURCE_RESPONSE } from '../../common/resource-scripts';
import { startHarness, type BuildRun, type Harness } from './harness';

let h: Harness;
let tmp: string;
beforeAll(async () => {
  if (!fs.existsSync(path.resolve(__dirname, '../../dist/resources/src/git.js')))
    throw new Error('run `npm run build` first: the base resource types run from dist/');
  h = await startHarness();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-resources-'));
  fs.chmodSync(tmp, 0o755);
});
afterAll(async () => {
  fs.rmSync(tmp, { recursive: true, force: true });
  await h.stop();
});

const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', '-c', 'safe.directory=*', ...args], { cwd, encoding: 'utf8' }).trim();

/** A bare repository (writable by the build's user, who pushes to it) with a work tree to commit from. */
function repo(name: string): { bare: string; work: string; commit: (file: string, text: string) => string } {
  const work = path.join(tmp, `${name}-work`);
  const bare = path.join(tmp, `${name}.git`);
  fs.mkdirSync(work);
  git(work, 'init', '-q', '-b', 'main');
  fs.mkdirSync(path.join(work, 'ci'));
  fs.writeFileSync(
    path.join(work, 'ci', 'test.yml'),
    'platform: linux\ninputs: [{name: src}]\nrun: {path: sh, args: [-c, "echo tested $(cat src/version)"]}\n',
  );
  fs.writeFileSync(path.join(work, 'version'), '1.0.0\n');
  git(work, 'add', '.');
  git(work, 'commit', '-q', '-m', 'first');
  git(tmp, 'clone', '-q', '--bare', work, bare);
  execFileSync('chmod', ['-R', 'a+rwX', bare]);
  git(work, 'remote', 'add', 'origin', bare);
  return {
    bare,
    work,
    commit(file, text) {
      fs.mkdirSync(path.dirname(path.join(work, file)), { recursive: true });
      fs.writeFileSync(path.join(work, file), text);
      git(work, 'add', '.');
      git(work, 'commit', '-q', '-m', `change ${file}`);
      git(work, 'push', '-q', 'origin', 'main');
      return git(work, 'rev-parse', 'HEAD');
    },
  };
}

const stepOf = (r: BuildRun, id: string) => r.summary?.steps.find((s) => s.id === id);

test('get fetches the newest commit of a file:// git repo; task file, load_var and its metadata var read from it', async () => {
  const r0 = repo('app');
  const head = r0.commit('version', '2.0.0\n');
  const r = await h.run(
    `
resources:
- name: src
  type: git
  source: {uri: "file://${r0.bare}", branch: main}
jobs:
- name: unit
  plan:
  - get: src
    trigger: true
  - task: test
    file: src/ci/test.yml
  - load_var: version
    file: src/version
    reveal: true
  - task: show
    config:
      platform: linux
      inputs: [{name: src}]
      run: {path: sh, args: [-c, 'echo "v=((.:version)) ref=$(cat src/.git/ref) commit=((.:src.commit))"']}
`,
    { job: 'unit' },
  );
  expect(r.status).toBe('succeeded');
  expect(r.logs.get('plan.1')).toContain('tested 2.0.0');
  // The get's metadata is the local var ((.:src)), as in Concourse 8.1.
  expect(r.logs.get('plan.3')).toContain(`v=2.0.0 ref=${head} commit=${head}`);
  expect(r.logs.get('plan.0')).toContain(`fetched: {"version":{"ref":"${head}"}`);
  expect(stepOf(r, 'plan.0')).toMatchObject({ kind: 'get', name: 'src', state: 'succeeded' });
});

test('git source paths/ignore_paths choose the commit; a pinned version is fetched without a check; depth', async () => {
  const r0 = repo('paths');
  const docs = r0.commit('docs/readme', 'docs\n');
  r0.commit('code.txt', 'code\n');
  const first = git(r0.work, 'rev-list', '--max-parents=0', 'HEAD');
  const r = await h.run(
    `
resources:
- {name: docs, type: git, source: {uri: "file://${r0.bare}", branch: main, paths: [docs]}}
- {name: not-code, type: git, source: {uri: "file://${r0.bare}", branch: main, ignore_paths: [code.txt]}}
- {name: pinned, type: git, source: {uri: "file://${r0.bare}", branch: main}}
jobs:
- name: j
  plan:
  - in_parallel:
    - get: docs
      params: {depth: 1}
    - get: not-code
    - get: pinned
      version: {ref: ${first}}
  - task: refs
    config:
      platform: linux
      inputs: [{name: docs}, {name: not-code}, {name: pinned}]
      run: {path: sh, args: [-c, 'cat docs/.git/ref not-code/.git/ref pinned/.git/ref; git -C docs rev-list --count HEAD 2>/dev/null || true']}
`,
    { job: 'j' },
  );
  expect(r.status).toBe('succeeded');
  const lines = (r.logs.get('plan.1') ?? '').trim().split('\n');
  expect(lines.slice(0, 3)).toEqual([docs, docs, first]);
});

test('put pushes a commit and a tag back, the implicit get fetches what it pushed; rebase on a moved branch', async () => {
  const r0 = repo('publish');
  const r = await h.run(
    `
resources:
- {name: repo, type: git, source: {uri: "file://${r0.bare}", branch: main}}
jobs:
- name: publish
  plan:
  - get: repo
  - task: bump
    config:
      platform: linux
      inputs: [{name: repo}]
      outputs: [{name: bumped}, {name: tag}]
      run:
        path: sh
        args:
        - -c
        - |
          git clone -q repo bumped && cd bumped && echo 3.0.0 > version &&
          git -c user.name=ci -c user.email=ci@ci commit -q -am release && echo v3.0.0 > ../tag/name
  # Steps run under their build's uid: git refuses the bare repository, another user's, unless told.
  - task: someone-else-pushes
    config:
      platform: linux
      run: {path: sh, args: [-c, 'git config --global safe.directory "*" && git clone -q file://${r0.bare} o && cd o && echo x > other && git add other && git -c user.name=o -c user.email=o@o commit -q -m other && git push -q origin main']}
  - put: repo
    params: {repository: bumped, tag: tag/name, rebase: true}
  - task: check
    config:
      platform: linux
      inputs: [{name: repo}]
      run: {path: sh, args: [-c, 'cat repo/version; ls repo/other']}
`,
    { job: 'publish' },
  );
  expect(r.status).toBe('succeeded');
  expect(r.logs.get('plan.4')).toContain('3.0.0');
  expect(r.logs.get('plan.4')).toContain('repo/other');
  expect(git(r0.bare, 'tag', '-l')).toBe('v3.0.0');
  expect(git(r0.bare, 'rev-parse', 'v3.0.0^{commit}')).toBe(git(r0.bare, 'rev-parse', 'main'));
});

test('a failing out errors the step, with its stderr in the step log', async () => {
  const r0 = repo('noget');
  const r = await h.run(
    `
resources:
- {name: repo, type: git, source: {uri: "file://${r0.bare}", branch: main}}
jobs:
- name: j
  plan:
  - get: repo
  - put: repo
    no_get: true
    params: {repository: nowhere}
`,
    { job: 'j' },
  );
  expect(r.status).toBe('errored');
  expect(r.message).toMatch(/resource repo: out exited 1/);
  expect(r.logs.get('plan.1')).toMatch(/git resource: /);
});

test('time resource and a resource type that is a local directory of check/in/out', async () => {
  const typeDir = path.join(tmp, 'types', 'counter');
  fs.mkdirSync(typeDir, { recursive: true });
  const script = (body: string) => `#!/bin/sh\nset -e\nreq=$(cat)\necho "request: $req" >&2\n${body}\n`;
  fs.writeFileSync(path.join(typeDir, 'check'), script(`echo '[{"n":"1"},{"n":"2"}]'`), { mode: 0o755 });
  fs.writeFileSync(path.join(typeDir, 'in'), script(`echo fetched > "$1/file"; echo '{"version":{"n":"2"},"metadata":[]}'`), {
    mode: 0o755,
  });
  fs.writeFileSync(path.join(typeDir, 'out'), script(`echo '{"version":{"n":"3"}}'`), { mode: 0o755 });
  const file = path.join(tmp, 'pipeline.yml');
  const r = await h.run(
    `
resource_types:
- {name: counter, type: directory, source: {path: ./types/counter}}
resources:
- {name: every-minute, type: time, source: {interval: 1m}}
- {name: count, type: counter, source: {secret: s}}
jobs:
- name: j
  plan:
  - get: every-minute
  - get: count
  - task: read
    config:
      platform: linux
      inputs: [{name: every-minute}, {name: count}]
      run: {path: sh, args: [-c, 'cat every-minute/timestamp count/file']}
`,
    { job: 'j', file },
  );
  expect(r.status).toBe('succeeded');
  expect(r.logs.get('plan.2')).toMatch(/^\d{4}-\d\d-\d\dT.*\nfetched\n$/);
  expect(r.logs.get('plan.1')).toContain('request: {"source":{"secret":"s"},"version":{"n":"2"},"params":{}}');
});

test('a type neither shipped nor declared (a base type of other workers, as Concourse allows) errors the step that uses it', async () => {
  const r = await h.run(
    `
resources: [{name: m, type: gitv2, source: {}}]
jobs: [{name: j, plan: [{get: m}]}]
`,
    { job: 'j' },
  );
  expect(r.status).toBe('errored');
  expect(r.message).toMatch(/resource m: its type gitv2 is not a base type here and no resource_types entry declares it/);
});

test('a resource type that is an image errors the build before its first step on the local runtime, naming file:line', async () => {
  const r = await h.run(
    `
resource_types:
- {name: stamp, type: registry-image, source: {repository: example.com/stamp-resource}}
resources: [{name: s, type: stamp, source: {}}]
jobs:
- name: j
  plan:
  - task: first
    config: {platform: linux, run: {path: 'true'}}
  - get: s
`,
    { job: 'j', file: 'pipeline.yml' },
  );
  expect(r.status).toBe('errored');
  expect(r.message).toContain('pipeline.yml:10: resource s: its type stamp is an image');
  expect(r.message).toContain('run the build on a containerd or kubernetes worker');
  expect(r.summary?.steps ?? []).toEqual([]);
});

test("put inputs as testflight's put-inputs.yml: a list, all, none, and detected from the params when not given (Concourse's default)", async () => {
  // The fixture's jobs, whose put of some-resource Concourse's put_inputs_test.go inspects with
  // `fly intercept ... -- ls`: here some-resource's type is a directory whose `out` runs `ls`.
  const typeDir = path.join(tmp, 'types', 'lister');
  fs.mkdirSync(typeDir, { recursive: true });
  for (const [exe, body] of [
    ['check', `echo '[]'`],
    ['in', `echo '{"version":{"v":"1"}}'`],
    ['out', `ls "$1" | sed 's/^/in put dir: /' >&2; echo '{"version":{"v":"1"}}'`],
  ])
    fs.writeFileSync(path.join(typeDir, exe), `#!/bin/sh\ncat >/dev/null\n${body}\n`, { mode: 0o755 });
  const fixture = fs.readFileSync(path.resolve(__dirname, '../fixtures/testflight/put-inputs.yml'), 'utf8');
  const text = fixture
    .replace('\n---\n', `\n---\nresource_types:\n- {name: lister, type: directory, source: {path: ${typeDir}}}\n`)
    .replace('- name: some-resource\n  type: mock', '- name: some-resource\n  type: lister');
  const putLog = async (job: string) => {
    const r = await h.run(text, { job, file: path.join(tmp, 'put-inputs.yml') });
    const put = r.summary?.steps.find((s) => s.name === 'some-resource' && s.kind === 'put');
    if (!put) throw new Error(`${job}: no put step in ${JSON.stringify(r.summary?.steps)}`);
    // The wrapper's response directory (common/resource-scripts.ts) sits beside the inputs.
    return [...(r.logs.get(put.id) ?? '').matchAll(/^in put dir: (.*)$/gm)]
      .map((m) => m[1])
      .filter((name) => name !== RESOURCE_RESPONSE)
      .sort();
  };
  expect(await putLog('job-using-specified-inputs')).toEqual(['specified-input']);
  expect(await putLog('job-using-all-inputs')).toEqual(['all-input', 'specified-input']);
  expect(await putLog('job-using-empty-inputs')).toEqual([]);
  expect(await putLog('job-using-no-inputs')).toEqual(['specified-input']);
  expect(await putLog('job-using-detect-inputs-simple')).toEqual(['specified-input']);
  expect(await putLog('job-using-detect-inputs-complex')).toEqual(['map-input', 'specified-input']);
});
