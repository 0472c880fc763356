// The `causeway` CLI as a user runs it: the compiled binary against the real Temporal
// and NATS of the test run, with a worker on a task queue of its own.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startHarness, type Harness } from '../workflows/harness';
import { requireBuiltCli, runCli, type CliResult, type CliOptions } from './cli-runner';

let h: Harness;
let dir: string;

beforeAll(async () => {
  requireBuiltCli();
  h = await startHarness({ killGraceMs: 1000 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-cli-'));
});
afterAll(async () => {
  await h.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

function cli(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; onStderr?: CliOptions['onStderr'] } = {},
): Promise<CliResult> {
  return runCli(args, { ...opts, cwd: opts.cwd ?? dir, queue: h.taskQueue });
}

function plan(name: string, yaml: string): string {
  const file = path.join(dir, `${name}.yml`);
  fs.writeFileSync(file, yaml);
  return file;
}

const task = (name: string, script: string) => `
- task: ${name}
  config:
    platform: linux
    run: {path: sh, args: [-c, '${script}']}`;

test('run streams the log with step headers and exits 0 on success', async () => {
  const r = await cli(['run', plan('ok', `name: ok\nplan:${task('greet', 'echo hello $WHO')}`), '-v', 'unused=1']);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/── greet \[plan\.0\] ──\nhello\s*\n✔ greet succeeded/);
  expect(r.stdout).toMatch(/build build-[0-9a-f-]+ succeeded/);
  expect(r.stderr).toMatch(/build build-[0-9a-f-]+ started: plan ok/);
});

test('exit codes follow fly: 1 failed, 2 errored, 3 aborted', async () => {
  const failed = await cli(['run', plan('fail', `plan:${task('boom', 'exit 4')}`)]);
  expect(failed.code).toBe(1);
  expect(failed.stdout).toContain('✘ boom failed (exit 4)');

  const errored = await cli([
    'run',
    plan('err', `plan:\n- task: needs\n  config:\n    platform: linux\n    inputs: [{name: nowhere}]\n    run: {path: 'true'}`),
  ]);
  expect(errored.code).toBe(2);
  expect(errored.stdout).toMatch(/missing input `nowhere`/);

  // A timeout is a failure, as in Concourse (exit 1), logged as a timeout.
  const timedOut = await cli([
    'run',
    plan('slow', `plan:\n- task: slow\n  timeout: 500ms\n  config:\n    platform: linux\n    run: {path: sleep, args: ["30"]}`),
  ]);
  expect(timedOut.code).toBe(1);
  expect(timedOut.stdout).toMatch(/timeout exceeded/);

  const aborted = await cli(['run', plan('abort', `plan:${task('wait', 'echo waiting; sleep 30')}`)], {
    onStderr: (text, child) => {
      if (text.includes('started: plan') && !child.killed) setTimeout(() => child.kill('SIGINT'), 1500);
    },
  });
  expect(aborted.code).toBe(3);
  expect(aborted.stderr).toContain('aborting the build');

  // A CI runner or process manager stops us with SIGTERM: the build is aborted, not left running.
  const terminated = await cli(['run', plan('term', `plan:${task('wait', 'echo waiting; sleep 30')}`)], {
    onStderr: (text, child) => {
      if (text.includes('started: plan') && !child.killed) setTimeout(() => child.kill('SIGTERM'), 1500);
    },
  });
  expect(terminated.code).toBe(3);
  expect(terminated.stderr).toContain('aborting the build');
});

test('bad input never starts a build and says where and what', async () => {
  const file = plan('bad', `plan:\n- task: t\n  config:\n    platform: linux\n    run: {path: echo, args: [((who))]}\n    parms: {}\n`);
  const r = await cli(['run', file]);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(`${file}:5:30: plan[0].config.run.args[0]: undefined var \`who\``);
  expect(r.stderr).toContain('did you mean `params`?');
  expect(r.stderr).not.toContain('started');
});

test('execute uploads an input directory and downloads an output, as fly execute', async () => {
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'numbers.txt'), '1\n2\n3\n');
  const taskFile = path.join(dir, 'sum.yml');
  fs.writeFileSync(
    taskFile,
    `platform: linux
inputs: [{name: src}]
outputs: [{name: result}]
run: {path: sh, args: [-c, 'awk "{s+=\\$1} END {print s}" src/numbers.txt > result/sum.txt; cat result/sum.txt']}
`,
  );
  const out = path.join(dir, 'out');
  const r = await cli(['execute', '-c', taskFile, '-i', `src=${src}`, '-o', `result=${out}`]);
  expect(r.code).toBe(0);
  expect(r.stdout).toContain('6');
  expect(fs.readFileSync(path.join(out, 'sum.txt'), 'utf8')).toBe('6\n');
});

test('execute appends `-- ARGS` to run.args and fills empty params from the caller’s environment, as fly execute', async () => {
  const taskFile = path.join(dir, 'args.yml');
  fs.writeFileSync(
    taskFile,
    `platform: linux
params: {FROM_ENV: , SET: fixed, UNSET_EMPTY: ""}
run: {path: sh, args: [-c, 'echo "args=$* env=$FROM_ENV set=$SET unset=[$UNSET_EMPTY]"', sh, first]}
`,
  );
  const r = await cli(['execute', '-c', taskFile, '--', 'second', '--flag'], { env: { FROM_ENV: 'from-caller', SET: 'caller' } });
  expect(r.code).toBe(0);
  expect(r.stdout).toContain('args=first second --flag env=from-caller set=fixed unset=[]');
});

test("execute's fly flags: --include-ignored uploads a work tree's ignored files, -b starts and exits, -b -o is refused", async () => {
  const repo = path.join(dir, 'repo');
  fs.mkdirSync(repo);
  execFileSync('git', ['init', '-q', repo]);
  fs.writeFileSync(path.join(repo, '.gitignore'), 'build.log\n');
  fs.writeFileSync(path.join(repo, 'build.log'), 'ignored\n');
  fs.writeFileSync(path.join(repo, 'main.c'), 'int main;\n');
  const taskFile = path.join(dir, 'list.yml');
  fs.writeFileSync(taskFile, `platform: linux\ninputs: [{name: repo}]\nrun: {path: sh, args: [-c, 'ls repo']}\n`);
  const plain = await cli(['execute', '-c', taskFile, '-i', `repo=${repo}`]);
  expect(plain.code).toBe(0);
  expect(plain.stdout).not.toContain('build.log');
  const all = await cli(['execute', '-c', taskFile, '-i', `repo=${repo}`, '--include-ignored']);
  expect(all.code).toBe(0);
  expect(all.stdout).toContain('build.log');

  const background = await cli(['execute', '-c', taskFile, '-i', `repo=${repo}`, '-b']);
  expect(background).toMatchObject({ code: 0, stdout: expect.stringMatching(/^build-[0-9a-f-]+\n$/) });
  expect((await h.finish(h.client.workflow.getHandle(background.stdout.trim()))).status).toBe('succeeded');
  const refused = await cli(['execute', '-c', taskFile, '-i', `repo=${repo}`, '-b', '-o', `repo=${dir}/out-b`]);
  expect(refused).toMatchObject({
    code: 2,
    stderr: expect.stringContaining('-b starts the build and exits, so it cannot fetch outputs (-o)'),
  });
});

test('watch replays a finished build and builds lists it', async () => {
  const run = await cli(['run', plan('watched', `name: watched\nplan:${task('one', 'echo first line; echo second line >&2')}`)]);
  const buildId = /build (build-[0-9a-f-]+) succeeded/.exec(run.stdout)?.[1];
  expect(buildId).toBeDefined();

  const watch = await cli(['watch', buildId as string]);
  expect(watch.code).toBe(0);
  expect(watch.stdout).toContain('first line');
  expect(watch.stdout).toContain('second line');

  const status = await cli(['status', buildId as string]);
  expect(status.stdout).toMatch(/✔ task one plan\.0 succeeded/);

  const list = await cli(['builds', '--plan', 'watched']);
  expect(list.stdout).toContain(buildId);
  expect(list.stdout).toMatch(/watched\s+succeeded/);
});

test('watch of an unknown build says so and how to find builds', async () => {
  const r = await cli(['watch', 'build-does-not-exist']);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain('no build build-does-not-exist');
  expect(r.stderr).toContain('causeway builds');
});
