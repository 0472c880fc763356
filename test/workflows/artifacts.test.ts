// Inputs, outputs, mappings, copies, caches, task files, params and run.dir against the real servers.
import fs from 'node:fs';
import path from 'node:path';
import { mountsUnder } from '../../activities/runtime/local/inputs';
import { sh, startHarness, type Harness } from './harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.stop());

const produce = (name: string, output: string, content: string, extra: Record<string, unknown> = {}) =>
  sh(name, `printf '${content}' > ${output}/file`, extra, { outputs: [{ name: output }] });

describe('artifacts', () => {
  test('an output reaches a later task as an input', async () => {
    const r = await h.run(`plan:\n- ${produce('p', 'out', 'hello')}\n- ${sh('c', 'cat out/file', {}, { inputs: [{ name: 'out' }] })}`);
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.1')).toBe('hello');
  });

  test('input_mapping and output_mapping rename artifacts', async () => {
    const p = produce('p', 'out', 'mapped', { output_mapping: { out: 'renamed' } });
    const c = sh('c', 'cat src/file', { input_mapping: { src: 'renamed' } }, { inputs: [{ name: 'src' }] });
    const r = await h.run(`plan:\n- ${p}\n- ${c}`);
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.1')).toBe('mapped');
    // the unmapped name does not exist
    const r2 = await h.run(`plan:\n- ${p}\n- ${sh('c', 'cat out/file', {}, { inputs: [{ name: 'out' }] })}`);
    expect(r2.status).toBe('errored');
    expect(r2.message).toMatch(/missing input `out`/);
  });

  test('inputs are copies: a consumer changing its input does not change what a third step sees', async () => {
    const modify = sh('modify', 'echo changed > out/file; rm -f out/other; ls out', {}, { inputs: [{ name: 'out' }] });
    const producer = sh('p', 'echo original > out/file; echo keep > out/other', {}, { outputs: [{ name: 'out' }] });
    const third = sh('third', 'cat out/file out/other', {}, { inputs: [{ name: 'out' }] });
    const r = await h.run(`plan:\n- ${producer}\n- ${modify}\n- ${third}`);
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.2')).toBe('original\nkeep\n');
  });

  test('on one machine an input is a copy-on-write view: consumers in parallel change and delete it, the producer’s files stay, no mount is left', async () => {
    const producer = sh('p', 'echo original > out/file; mkdir out/sub; echo keep > out/sub/other', {}, { outputs: [{ name: 'out' }] });
    const consumer = (name: string, script: string) => sh(name, `stat -f -c %T out; ${script}`, {}, { inputs: [{ name: 'out' }] });
    const parallel = JSON.stringify({
      in_parallel: [
        JSON.parse(consumer('a', 'echo a > out/file; rm -r out/sub')),
        JSON.parse(consumer('b', 'rm out/file; echo b > out/new')),
      ],
    });
    const third = consumer('third', 'cat out/file out/sub/other; test -e out/new || echo no-new');
    const r = await h.run(`plan:\n- ${producer}\n- ${parallel}\n- ${third}`);
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.2')).toBe('overlayfs\noriginal\nkeep\nno-new\n');
    const build = path.join(h.home, 'builds', r.buildId);
    expect(await mountsUnder(build)).toEqual([]);
    // A step that only reads its input copied nothing up into its layer (not even to give it to the build's uid).
    const uppers = fs
      .readdirSync(build, { recursive: true, encoding: 'utf8' })
      .filter((p) => p.endsWith(path.join('layers', '0', 'upper')));
    const reader = uppers.find((p) => p.includes(`${path.sep}plan.2${path.sep}`));
    expect(reader && fs.readdirSync(path.join(build, reader))).toEqual([]);
  });

  test('a step that cannot start leaves no input view mounted', async () => {
    const producer = sh('p', 'echo x > out/file', {}, { outputs: [{ name: 'out' }] });
    const r = await h.run(
      `plan:\n- ${producer}\n- {task: t, config: {platform: linux, inputs: [{name: out}], run: {path: no-such-command-xyz}}}`,
    );
    expect(r.status).toBe('errored');
    expect(await mountsUnder(`${h.home}/builds/${r.buildId}`)).toEqual([]);
  });

  test('a task with the same input and output passes on its changes (Concourse replaces the artifact)', async () => {
    const producer = sh('p', 'echo v1 > repo/file', {}, { outputs: [{ name: 'repo' }] });
    const bump = sh('bump', 'echo v2 > repo/file', {}, { inputs: [{ name: 'repo' }], outputs: [{ name: 'repo' }] });
    const read = sh('read', 'cat repo/file', {}, { inputs: [{ name: 'repo' }] });
    const r = await h.run(`plan:\n- ${producer}\n- ${bump}\n- ${read}`);
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.2')).toBe('v2\n');
  });

  test('input and output paths, and optional inputs', async () => {
    const p = sh('p', 'echo deep > some/where/file', {}, { outputs: [{ name: 'out', path: 'some/where' }] });
    const c = sh(
      'c',
      'cat in/here/file; test -e maybe || echo no-optional',
      {},
      {
        inputs: [
          { name: 'out', path: 'in/here' },
          { name: 'maybe', optional: true },
        ],
      },
    );
    const r = await h.run(`plan:\n- ${p}\n- ${c}`);
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.1')).toBe('deep\nno-optional\n');
  });

  test('caches persist between two builds of the same plan, per step', async () => {
    const job = `cache-${Math.floor(Math.random() * 1e9)}`;
    const step = (name: string) => sh(name, 'cat .cache/runs 2>/dev/null; echo run >> .cache/runs', {}, { caches: [{ path: '.cache' }] });
    const plan = `name: ${job}\nplan:\n- ${step('a')}\n- ${step('b')}`;
    const r1 = await h.run(plan);
    expect(r1.status).toBe('succeeded');
    expect(r1.logs.get('plan.0') ?? '').toBe('');
    const r2 = await h.run(plan);
    expect(r2.logs.get('plan.0')).toBe('run\n');
    expect(r2.logs.get('plan.1')).toBe('run\n');
    const other = await h.run(`name: ${job}-other\nplan:\n- ${step('a')}`);
    expect(other.logs.get('plan.0') ?? '').toBe('');
  });

  test('a task file from an artifact, with vars, params overriding the file’s params', async () => {
    const taskFile = [
      'platform: linux',
      'inputs: [{name: src}]',
      'params: {FROM_FILE: file, OVERRIDDEN: file}',
      'run: {path: sh, args: [-c, "echo $FROM_FILE $OVERRIDDEN [[greeting]]; cat src/data"]}',
    ].join('\n');
    // the file's ((greeting)) is written as [[greeting]] so the plan itself has no ((var)) to interpolate
    const write = sh(
      'write',
      `cat > src/task.yml <<'YML'\n${taskFile}\nYML\nsed -i "s/\\[\\[/((/; s/\\]\\]/))/" src/task.yml; echo payload > src/data`,
      {},
      { outputs: [{ name: 'src' }] },
    );
    const run = JSON.stringify({ task: 'from-file', file: 'src/task.yml', vars: { greeting: 'hi' }, params: { OVERRIDDEN: 'step' } });
    const r = await h.run(`plan:\n- ${write}\n- ${run}`);
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.1')).toBe('file step hi\npayload\n');
  });

  test('a task file that does not exist errors the build', async () => {
    const write = sh('write', 'true', {}, { outputs: [{ name: 'src' }] });
    const r = await h.run(`plan:\n- ${write}\n- {task: t, file: src/nope.yml}`);
    expect(r.status).toBe('errored');
    expect(r.message).toMatch(/nope\.yml/);
  });

  test('params become env vars; step params override config params; non-strings are JSON', async () => {
    const step = sh(
      'env',
      'echo "$A|$B|$C|$D"',
      { params: { B: 'step', D: { k: [1, 2] } } },
      { params: { A: 'config', B: 'config', C: 3 } },
    );
    const r = await h.run(`plan:\n- ${step}`);
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.0')).toBe('config|step|3|{"k":[1,2]}\n');
  });

  test('run.dir sets the working directory inside the task', async () => {
    const p = sh('p', 'echo x > repo/marker', {}, { outputs: [{ name: 'repo' }] });
    const c = JSON.stringify({
      task: 'in-dir',
      config: {
        platform: 'linux',
        inputs: [{ name: 'repo' }],
        run: { path: 'sh', args: ['-c', 'basename $PWD; cat marker'], dir: 'repo' },
      },
    });
    const r = await h.run(`plan:\n- ${p}\n- ${c}`);
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.1')).toBe('repo\nx\n');
  });

  test('a missing run.path or run.dir errors the build (Concourse cannot start it) instead of failing it', async () => {
    const noCmd = await h.run(`plan:\n- {task: t, config: {platform: linux, run: {path: no-such-command-xyz}}}`);
    expect(noCmd.status).toBe('errored');
    expect(noCmd.message).toMatch(/run.path no-such-command-xyz: no such executable/);
    const noScript = await h.run(`plan:\n- {task: t, config: {platform: linux, run: {path: ./missing.sh}}}`);
    expect(noScript.status).toBe('errored');
    const noDir = await h.run(`plan:\n- {task: t, config: {platform: linux, run: {path: sh, args: [-c, pwd], dir: nowhere}}}`);
    expect(noDir.status).toBe('errored');
    expect(noDir.message).toMatch(/run.dir nowhere/);
  });

  test('run.path may be a script in an input, relative to run.dir', async () => {
    const p = sh(
      'p',
      'mkdir -p repo/ci; printf "#!/bin/sh\\necho from-script\\n" > repo/ci/test.sh; chmod +x repo/ci/test.sh',
      {},
      { outputs: [{ name: 'repo' }] },
    );
    const c = JSON.stringify({
      task: 's',
      config: { platform: 'linux', inputs: [{ name: 'repo' }], run: { path: './ci/test.sh', dir: 'repo' } },
    });
    const r = await h.run(`plan:\n- ${p}\n- ${c}`);
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.1')).toBe('from-script\n');
  });

  test('run.user runs the task as that user', async () => {
    const r = await h.run(
      `plan:\n- {task: t, config: {platform: linux, outputs: [{name: out}], run: {path: sh, args: [-c, 'id -un; touch out/mine'], user: nobody}}}`,
    );
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.0')).toBe('nobody\n');
  });
});
