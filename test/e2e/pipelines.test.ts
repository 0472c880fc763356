// The Booklit-style pipeline through the CLI against the real stack: a local git repository
// (file://), a commit that the check notices, `unit` running on the fetched commit, `publish`
// (passed: [unit]) putting a tag back, and trigger-job, pause/unpause and pinning as in Concourse.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { runCli } from './cli-runner';
import { pipelineReader, pipelineSuite } from './pipeline-cli';

const suite = pipelineSuite('pipelines', {
  // Steps run as their build's uid (a root worker): they read this directory, and puts push to
  // its bare repositories, which are shared with every uid (--shared=0777).
  shared: true,
});
const { cli } = suite;
let bare: string;
let work: string;

beforeAll(() => {
  bare = path.join(suite.dir, 'booklit.git');
  work = path.join(suite.dir, 'work');
  git(suite.dir, 'init', '--quiet', '--bare', '--shared=0777', '--initial-branch=main', bare);
  git(suite.dir, 'clone', '--quiet', bare, work);
});

function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd, encoding: 'utf8' }).trim();
}

/** A commit on main, pushed to the repository the pipeline watches; returns its sha. */
function commit(text: string): string {
  fs.writeFileSync(path.join(work, 'version.txt'), `${text}\n`);
  git(work, 'add', '.');
  git(work, 'commit', '--quiet', '-m', text);
  git(work, 'push', '--quiet', 'origin', 'HEAD:main');
  return git(work, 'rev-parse', 'HEAD');
}

const { jobs, ended } = pipelineReader(cli);

const PIPELINE = (uri: string) => `
resources:
- name: repo
  type: git
  check_every: 1s
  source: {uri: ${uri}, branch: main}

jobs:
- name: unit
  plan:
  - get: repo
    trigger: true
  - task: test
    config:
      platform: linux
      inputs: [{name: repo}]
      run: {path: sh, args: [-c, 'echo "testing $(cat repo/version.txt)"']}
- name: publish
  serial: true
  plan:
  - get: repo
    trigger: true
    passed: [unit]
  - task: name-tag
    config:
      platform: linux
      inputs: [{name: repo}]
      outputs: [{name: tag}]
      run: {path: sh, args: [-c, 'echo "v-$(cat repo/version.txt)" > tag/name']}
  - put: repo
    params: {repository: repo, tag: tag/name}
`;

test('a pipeline runs itself: check, trigger, passed, put, trigger-job, pause, pin', async () => {
  const file = path.join(suite.dir, 'booklit.yml');
  fs.writeFileSync(file, PIPELINE('((uri))'));
  const first = commit('one');

  // Bad input is refused with file:line before anything changes. (An undefined var in a
  // source is a credential ref, resolved when the check runs, as fly leaves it.)
  const badFile = path.join(suite.dir, 'bad.yml');
  fs.writeFileSync(badFile, PIPELINE('((uri))').replace('check_every: 1s', 'check_every: ((every))'));
  const bad = await cli('set-pipeline', '-n', '-p', 'booklit', '-c', badFile);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toMatch(/bad\.yml:\d+:\d+: .*undefined var `every`/);
  expect((await cli('pipelines')).stderr).toContain('no pipelines');

  // fly's -c - (stdin, which asks nothing) and --dry-run: the diff, and nothing set.
  const dry = await runCli(['set-pipeline', '-p', 'booklit', '-c', '-', '--dry-run', '-v', `uri=file://${bare}`], {
    cwd: suite.dir,
    queue: suite.h.taskQueue,
    stdin: PIPELINE('((uri))'),
  });
  expect(dry).toMatchObject({ code: 0, stdout: expect.stringContaining('+  source: {uri: ((uri)), branch: main}') });
  expect(dry.stderr).toContain('dry run: nothing applied to new pipeline booklit');
  expect((await cli('pipelines')).stderr).toContain('no pipelines');

  const set = await cli('set-pipeline', '-n', '-p', 'booklit', '-c', file, '-v', `uri=file://${bare}`);
  expect(set.code).toBe(0);
  expect(set.stdout).toContain('+  source: {uri: ((uri)), branch: main}');
  expect(set.stderr).toContain('pipeline created: booklit');
  // As fly: a new pipeline starts paused, and set-pipeline says how to unpause it.
  expect(set.stderr).toContain('the pipeline is currently paused. to unpause, run: causeway unpause-pipeline -p booklit');
  expect((await cli('pipelines')).stdout).toMatch(/booklit\s+yes\s+2\s+1/);
  expect((await cli('unpause-pipeline', '-p', 'booklit')).code).toBe(0);
  expect((await cli('pipelines')).stdout).toMatch(/booklit\s+no\s+2\s+1/);

  // The check notices the commit; unit runs on it; publish follows and tags it.
  expect(await ended('booklit', 'unit', 1)).toBe('succeeded');
  const log = await cli('watch', 'build-booklit:unit:1');
  expect(log.stdout).toContain('testing one');
  expect(await ended('booklit', 'publish', 1)).toBe('succeeded');
  expect(git(bare, 'tag', '--points-at', first)).toBe('v-one');
  const builds = await cli('builds', '-j', 'booklit/unit', '--json');
  expect((JSON.parse(builds.stdout) as { buildId: string; status: string }[]).map((b) => [b.buildId, b.status])).toEqual([
    ['build-booklit:unit:1', 'succeeded'],
  ]);

  // A second commit triggers both again.
  const second = commit('two');
  expect(await ended('booklit', 'unit', 2)).toBe('succeeded');
  expect(await ended('booklit', 'publish', 2)).toBe('succeeded');
  expect(git(bare, 'tag', '--points-at', second)).toBe('v-two');

  // trigger-job runs unit again on the same version; publish has seen it: no new publish.
  const manual = await cli('trigger-job', '-j', 'booklit/unit', '-w');
  expect(manual.code).toBe(0);
  expect(manual.stderr).toContain('started booklit/unit #3');
  expect(manual.stdout).toContain('testing two');

  // A paused job builds nothing new until unpaused; check-resource records the version now.
  expect((await cli('pause-job', '-j', 'booklit/unit')).code).toBe(0);
  commit('three');
  const checked = await cli('check-resource', '-r', 'booklit/repo');
  expect(checked.code).toBe(0);
  const versions = await cli('resource-versions', '-r', 'booklit/repo', '--json');
  expect((JSON.parse(versions.stdout) as { id: number }[]).map((v) => v.id)).toEqual([3, 2, 1]);
  await new Promise((r) => setTimeout(r, 3000));
  expect((await jobs('booklit')).unit.builds.map((b) => b.number)).toEqual([1, 2, 3]);
  expect((await cli('unpause-job', '-j', 'booklit/unit')).code).toBe(0);
  expect(await ended('booklit', 'unit', 4)).toBe('succeeded');
  expect((await cli('watch', 'build-booklit:unit:4')).stdout).toContain('testing three');
  expect(await ended('booklit', 'publish', 3)).toBe('succeeded');

  // Pinning to an old version triggers nothing the job already ran; trigger-job runs on the pin.
  expect((await cli('pin-resource', '-r', 'booklit/repo', '-v', `ref:${first}`)).code).toBe(0);
  const pinnedRun = await cli('trigger-job', '-j', 'booklit/unit', '-w');
  expect(pinnedRun.stdout).toContain('testing one');
  expect((await cli('resource-versions', '-r', 'booklit/repo')).stdout).toMatch(new RegExp(`1\\s+ref:${first}\\s+yes`));
  const missing = await cli('pin-resource', '-r', 'booklit/repo', '-v', 'ref:nope');
  expect(missing.code).toBe(2);
  expect(missing.stderr).toContain('has no version matching');
  expect((await cli('unpin-resource', '-r', 'booklit/repo')).code).toBe(0);

  // A paused pipeline does not check; unpaused, it notices the commit and builds it.
  expect((await cli('pause-pipeline', '-p', 'booklit')).code).toBe(0);
  // A check that began before the pause may still be running: let it end first.
  await new Promise((r) => setTimeout(r, 2000));
  commit('four');
  await new Promise((r) => setTimeout(r, 3000));
  expect((JSON.parse((await cli('resource-versions', '-r', 'booklit/repo', '--json')).stdout) as unknown[]).length).toBe(3);
  expect((await cli('unpause-pipeline', '-p', 'booklit')).code).toBe(0);
  expect(await ended('booklit', 'unit', 6)).toBe('succeeded');
  expect((await cli('watch', 'build-booklit:unit:6')).stdout).toContain('testing four');

  // Errors name what and how to fix.
  const unknown = await cli('trigger-job', '-j', 'booklit/nope');
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toContain('no job nope in pipeline booklit (jobs: unit, publish)');

  // An unchanged set-pipeline says so; destroy stops it.
  const again = await cli('set-pipeline', '-n', '-p', 'booklit', '-c', file, '-v', `uri=file://${bare}`);
  expect(again.stderr).toContain('no changes to apply');
  expect(await cli('destroy-pipeline', '-n', '-p', 'booklit')).toMatchObject({ code: 0 });
  expect((await cli('pipelines')).stderr).toContain('no pipelines');
  expect((await cli('jobs', '-p', 'booklit')).stderr).toContain('no pipeline booklit');

  // Set again, it starts over, numbering builds on after the old ones (whose ids stay taken).
  const reset = await cli('set-pipeline', '-n', '-p', 'booklit', '-c', file, '-v', `uri=file://${bare}`);
  expect(reset.stderr).toContain('pipeline created: booklit');
  expect((await cli('unpause-pipeline', '-p', 'booklit')).code).toBe(0);
  expect(await ended('booklit', 'unit', 7)).toBe('succeeded');
  expect((await cli('watch', 'build-booklit:unit:7')).stdout).toContain('testing four');
  expect(await cli('destroy-pipeline', '-n', '-p', 'booklit')).toMatchObject({ code: 0 });
});

const SELF = `
resources:
- name: repo
  type: git
  check_every: 1s
  source: {uri: ((uri)), branch: main}

jobs:
- name: reconfigure
  plan:
  - get: repo
    trigger: true
  - set_pipeline: self
    file: repo/ci/pipeline.yml
    var_files: [repo/ci/vars.yml]
    vars: {greeting: hello from the step}
`;

const HELLO = `
- name: hello
  plan:
  - get: repo
    trigger: true
    passed: [reconfigure]
  - task: say
    config:
      platform: linux
      run: {path: echo, args: [((greeting))]}
`;

test('a pipeline sets itself from a git get: set_pipeline: self, file and var_files from the artifact, vars', async () => {
  const ciBare = path.join(suite.dir, 'ci.git');
  const ciWork = path.join(suite.dir, 'ci-work');
  git(suite.dir, 'init', '--quiet', '--bare', '--shared=0777', '--initial-branch=main', ciBare);
  git(suite.dir, 'clone', '--quiet', ciBare, ciWork);
  const push = (pipeline: string, message: string) => {
    fs.mkdirSync(path.join(ciWork, 'ci'), { recursive: true });
    fs.writeFileSync(path.join(ciWork, 'ci', 'pipeline.yml'), pipeline);
    fs.writeFileSync(path.join(ciWork, 'ci', 'vars.yml'), `uri: file://${ciBare}\ngreeting: from the var file\n`);
    git(ciWork, 'add', '.');
    git(ciWork, 'commit', '--quiet', '-m', message);
    git(ciWork, 'push', '--quiet', 'origin', 'HEAD:main');
  };
  push(SELF, 'reconfigure only');
  const set = await cli(
    'set-pipeline',
    '-n',
    '-p',
    'selfset',
    '-c',
    path.join(ciWork, 'ci', 'pipeline.yml'),
    '-l',
    path.join(ciWork, 'ci', 'vars.yml'),
  );
  expect(set.code).toBe(0);
  expect((await cli('unpause-pipeline', '-p', 'selfset')).code).toBe(0);

  // The first build sets the file it was set from: nothing changes.
  expect(await ended('selfset', 'reconfigure', 1)).toBe('succeeded');
  expect((await cli('watch', 'build-selfset:reconfigure:1')).stdout).toContain('no changes to apply.');

  // A commit that adds a job: the build shows the diff and sets it; the new job runs, with the step's vars over the var file's.
  push(SELF + HELLO, 'add hello');
  expect(await ended('selfset', 'reconfigure', 2)).toBe('succeeded');
  const log = (await cli('watch', 'build-selfset:reconfigure:2')).stdout;
  expect(log).toContain('+- name: hello');
  expect(log).toContain('setting pipeline: selfset');
  expect(Object.keys(await jobs('selfset'))).toEqual(['reconfigure', 'hello']);
  expect(await ended('selfset', 'hello', 1)).toBe('succeeded');
  expect((await cli('watch', 'build-selfset:hello:1')).stdout).toContain('hello from the step');

  // An invalid file fails the step (not errored), its problems in the log; the running config stays.
  push(SELF + HELLO.replace('passed: [reconfigure]', 'passed: [nope]'), 'break it');
  expect(await ended('selfset', 'reconfigure', 3)).toBe('failed');
  const broken = await cli('watch', 'build-selfset:reconfigure:3');
  expect(broken.stdout + broken.stderr).toContain('there is no job nope');
  expect(broken.stdout + broken.stderr).toContain("selfset is not a valid pipeline; its problems are in the step's log");
  expect(Object.keys(await jobs('selfset'))).toEqual(['reconfigure', 'hello']);
  expect((await cli('destroy-pipeline', '-n', '-p', 'selfset')).code).toBe(0);
});

test("passed counts the versions a job's put made: a resource never checked feeds the next job", async () => {
  const srcBare = path.join(suite.dir, 'src.git');
  const srcWork = path.join(suite.dir, 'src-work');
  const releaseBare = path.join(suite.dir, 'release.git');
  git(suite.dir, 'init', '--quiet', '--bare', '--shared=0777', '--initial-branch=main', srcBare);
  git(suite.dir, 'init', '--quiet', '--bare', '--shared=0777', '--initial-branch=main', releaseBare);
  git(suite.dir, 'clone', '--quiet', srcBare, srcWork);
  fs.writeFileSync(path.join(srcWork, 'version.txt'), 'one\n');
  git(srcWork, 'add', '.');
  git(srcWork, 'commit', '--quiet', '-m', 'one');
  git(srcWork, 'push', '--quiet', 'origin', 'HEAD:main');
  const file = path.join(suite.dir, 'release.yml');
  fs.writeFileSync(
    file,
    `
resources:
- name: src
  type: git
  check_every: 1s
  source: {uri: file://${srcBare}, branch: main}
- name: release
  type: git
  check_every: never          # its only versions are the ones build puts
  source: {uri: file://${releaseBare}, branch: release}
jobs:
- name: build
  plan:
  - get: src
    trigger: true
  - put: release
    params: {repository: src}
- name: ship
  plan:
  - get: release
    trigger: true
    passed: [build]
  - task: ship
    config:
      platform: linux
      inputs: [{name: release}]
      run: {path: sh, args: [-c, 'echo "shipping $(cat release/version.txt)"']}
`,
  );
  expect((await cli('set-pipeline', '-n', '-p', 'release', '-c', file)).code).toBe(0);
  expect((await cli('unpause-pipeline', '-p', 'release')).code).toBe(0);
  expect(await ended('release', 'build', 1)).toBe('succeeded');
  expect(await ended('release', 'ship', 1)).toBe('succeeded');
  expect((await cli('watch', 'build-release:ship:1')).stdout).toContain('shipping one');
  const versions = JSON.parse((await cli('resource-versions', '-r', 'release/release', '--json')).stdout) as { version: unknown }[];
  expect(versions.map((v) => v.version)).toEqual([{ ref: git(srcWork, 'rev-parse', 'HEAD') }]);
  expect((await cli('destroy-pipeline', '-n', '-p', 'release')).code).toBe(0);
});

// Its names hold dots, as Concourse's allow (its golang-lib example's job `golang-1.20`): the
// build id holds them too, and its log still reaches the CLI through NATS.
test('trigger-job checks the resources first (Concourse): a commit no check has seen is built at once, and once', async () => {
  const repoBare = path.join(suite.dir, 'manual.git');
  const repoWork = path.join(suite.dir, 'manual-work');
  git(suite.dir, 'init', '--quiet', '--bare', '--shared=0777', '--initial-branch=main', repoBare);
  git(suite.dir, 'clone', '--quiet', repoBare, repoWork);
  const push = (text: string) => {
    fs.writeFileSync(path.join(repoWork, 'version.txt'), `${text}\n`);
    git(repoWork, 'add', '.');
    git(repoWork, 'commit', '--quiet', '-m', text);
    git(repoWork, 'push', '--quiet', 'origin', 'HEAD:main');
  };
  push('one');
  const file = path.join(suite.dir, 'manual.yml');
  fs.writeFileSync(
    file,
    `
resources:
- name: repo-1.x
  type: git
  check_every: never          # only check-resource and trigger-job check it
  source: {uri: file://${repoBare}, branch: main}
jobs:
- name: unit-1.20
  plan:
  - get: repo-1.x
    trigger: true
  - task: test
    config:
      platform: linux
      inputs: [{name: repo-1.x}]
      run: {path: sh, args: [-c, 'echo "testing $(cat repo-1.x/version.txt)"']}
`,
  );
  expect((await cli('set-pipeline', '-n', '-p', 'manual-1.x', '-c', file)).code).toBe(0);
  expect((await cli('unpause-pipeline', '-p', 'manual-1.x')).code).toBe(0);
  // Never checked, no version: the build checks, then runs on what the check found.
  const first = await cli('trigger-job', '-j', 'manual-1.x/unit-1.20', '-w');
  expect(first.code).toBe(0);
  expect(first.stdout).toContain('testing one');
  // A commit only the next trigger-job's check sees; the new version does not make a second build.
  push('two');
  const second = await cli('trigger-job', '-j', 'manual-1.x/unit-1.20', '-w');
  expect(second.code).toBe(0);
  expect(second.stderr).toContain('started manual-1.x/unit-1.20 #2');
  expect(second.stdout).toContain('testing two');
  await new Promise((r) => setTimeout(r, 3000));
  expect((await jobs('manual-1.x'))['unit-1.20'].builds.map((b) => b.number)).toEqual([1, 2]);
  // fly's get-pipeline and watch -j: the file as set; the job's newest build, or one by number.
  expect((await cli('get-pipeline', '-p', 'manual-1.x')).stdout).toBe(fs.readFileSync(file, 'utf8'));
  expect((await cli('watch', '-j', 'manual-1.x/unit-1.20')).stdout).toContain('testing two');
  expect((await cli('watch', '-j', 'manual-1.x/unit-1.20', '-b', '1')).stdout).toContain('testing one');
  expect((await cli('abort-build', '-j', 'manual-1.x/unit-1.20', '-b', '1')).stderr).toContain(
    'build build-manual-1.x:unit-1.20:1 already ended (completed); nothing to abort',
  );
  expect((await cli('destroy-pipeline', '-n', '-p', 'manual-1.x')).code).toBe(0);
});
