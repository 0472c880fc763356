// Hostile and careless input, as a user (the CLI) and as any Temporal client (a plan the CLI
// would refuse, started directly). The CLI refuses before a build starts, saying where and
// what to do; a plan that gets past it ends errored at once (no retries), writes nothing
// outside CAUSEWAY_HOME, and the worker runs the next build as if nothing happened.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startBuild } from '../../common/build-client';
import type { CompiledPlan, Step, TaskConfig } from '../../schemas';
import { PART_BUDGET } from '../../workflows/fanout';
import { WORKER_LIMITS } from '../../workers/pollers';
import { marker, sh, startHarness, type Harness } from '../workflows/harness';
import { requireBuiltCli, runCli, type CliResult } from './cli-runner';

let h: Harness;
let dir: string;

beforeAll(async () => {
  requireBuiltCli();
  h = await startHarness({ killGraceMs: 1000 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-hostile-'));
});
afterAll(async () => {
  await h.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

function cli(args: string[]): Promise<CliResult> {
  return runCli(args, { cwd: dir, queue: h.taskQueue });
}

function file(name: string, content: string | Buffer): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, content);
  return p;
}

const taskPlan = (config: string, extra = '') => `plan:
- task: t
  ${extra}
  config:
    platform: linux
    run: {path: sh, args: [-c, 'true']}
${config}
`;

const deep = (n: number) => {
  let step = `{task: t, config: {platform: linux, run: {path: 'true'}}}`;
  for (let i = 0; i < n; i++) step = `{do: [${step}]}`;
  return `plan:\n- ${step}\n`;
};

describe('the CLI refuses before the build starts', () => {
  test.each([
    [
      'an output path with ../..',
      () => ['run', file('out.yml', taskPlan('    outputs: [{name: o, path: ../../o}]'))],
      /out\.yml:\d+:\d+: .*outputs\[0\]\.path: `\.\.\/\.\.\/o` leaves the task's working directory/,
    ],
    [
      'a cache path with ../..',
      () => ['run', file('cache.yml', taskPlan('    caches: [{path: ../../../../tmp/x}]'))],
      /cache\.yml:\d+:\d+: .*caches\[0\]\.path: .* leaves/,
    ],
    [
      'an input path that is absolute',
      () => ['run', file('in.yml', taskPlan('    inputs: [{name: i, path: /etc}]'))],
      /inputs\[0\]\.path: `\/etc` is absolute/,
    ],
    [
      'a plan name with ../',
      () => ['run', file('name.yml', `name: ../../../tmp/evil\n${taskPlan('')}`)],
      /name\.yml:1:\d+: name: plan name: .* contains `\/`/,
    ],
    ['100 nested do', () => ['run', file('deep.yml', deep(100))], /deep\.yml:\d+:1: .*steps nested too deeply/],
    // (From a vars file: a command line cannot carry 1 MB either.)
    [
      'a 1 MB var in the environment',
      () => [
        'run',
        file('env.yml', taskPlan('', 'params: {BIG: ((big))}')),
        '-l',
        file('env-vars.yml', `big: ${'x'.repeat(1024 * 1024)}\n`),
      ],
      /param `BIG` is 1\.0 MB; a process accepts at most 128\.0 KB per environment variable/,
    ],
    [
      'invalid UTF-8',
      () => [
        'run',
        file(
          'utf8.yml',
          Buffer.concat([
            Buffer.from('plan:\n- task: t'),
            Buffer.from([0xff]),
            Buffer.from('\n  config: {platform: linux, run: {path: "true"}}\n'),
          ]),
        ),
      ],
      /utf8\.yml:2:10: invalid UTF-8 \(byte 0xff at offset 15\)/,
    ],
    ['-i ..=dir', () => ['run', file('ok.yml', taskPlan('    inputs: [{name: i}]')), '-i', '..=.'], /-i \.\.=\.: `\.\.` is not a name/],
    [
      '-i naming no input',
      () => ['run', file('ok2.yml', taskPlan('    inputs: [{name: i}]')), '-i', 'i=.', '-i', 'typo=.'],
      /-i typo: no step of the plan has an input named `typo` \(inputs: i\)/,
    ],
    [
      '-o naming no output',
      () => ['run', file('ok3.yml', taskPlan('    outputs: [{name: o}]')), '-o', 'out=./x'],
      /-o out: no step of the plan has an output named `out` \(outputs: o\)/,
    ],
    [
      'execute -o out=/',
      () => ['execute', '-c', file('task.yml', 'platform: linux\noutputs: [{name: out}]\nrun: {path: "true"}\n'), '-o', 'out=/'],
      /-o out=\/: will not write an output over the filesystem's root/,
    ],
  ])('%s', async (_what, args, expected) => {
    const r = await cli(args());
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 2, stderr: expect.stringMatching(expected) });
    expect(r.stderr).not.toMatch(/started: plan/);
  });

  test('a 3 MB var is named with Temporal’s limit', async () => {
    // Too large for a command line: from a vars file.
    const vars = file('big-vars.yml', `big: ${'x'.repeat(3 * 1024 * 1024)}\n`);
    const r = await cli(['run', file('big.yml', taskPlan('')), '-l', vars]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/var `big` is 3\.0 MB; Temporal accepts at most 2\.0 MB per payload: move large data into an input with -i/);
  });
});

/** A one-task plan as any Temporal client could send it, past the CLI's checks. */
function crafted(name: string, step: Partial<Step> & { config?: Partial<TaskConfig>; params?: Record<string, string> }): CompiledPlan {
  const config: TaskConfig = {
    platform: 'linux',
    inputs: [],
    outputs: [],
    caches: [],
    params: {},
    run: { path: 'true', args: [] },
    ...step.config,
  };
  const task = {
    kind: 'task',
    id: 'plan.0',
    task: 't',
    params: {},
    vars: {},
    inputMapping: {},
    outputMapping: {},
    privileged: false,
    ...step,
    config,
  } as Step;
  return { name, source: 'crafted.yml', plan: { kind: 'do', id: 'plan', steps: [task] } };
}

describe('a plan past the CLI ends errored at once and writes nothing outside CAUSEWAY_HOME', () => {
  const outside = path.join(os.tmpdir(), marker('escape'));
  const up = '../'.repeat(20);

  test.each([
    // The build's input check refuses these before any activity (schemas/build-input.ts); the runtime's own checks stay behind it.
    [
      'a cache path with ../..',
      () => crafted('p', { config: { caches: [{ path: `${up}${outside}` }] } }),
      /leaves the task's working directory/,
    ],
    [
      'an output path with ../..',
      () => crafted('p', { config: { outputs: [{ name: 'o', path: `${up}${outside}` }] } }),
      /leaves the task's working directory/,
    ],
    [
      'a run.dir outside',
      () => crafted('p', { config: { run: { path: 'true', args: [], dir: `${up}${outside}` } } }),
      /leaves the task's working directory/,
    ],
    [
      'a plan name with ../',
      () => crafted(`${up}${outside}`, { config: { caches: [{ path: 'c' }] } }),
      /plan\.name: .* contains `\/`: a name becomes one directory name/,
    ],
    ['a step id longer than a file name', () => crafted('p', { id: `plan.${'0'.repeat(300)}` }), /a step id is at most 255 bytes/],
    ['a 1 MB environment variable', () => crafted('p', { params: { BIG: 'x'.repeat(1024 * 1024) } }), /E2BIG/],
  ])('%s', async (_what, plan, expected) => {
    const handle = await startBuild(h.client, { plan: plan(), taskQueue: h.taskQueue });
    const run = await h.finish(handle);
    expect({ status: run.status, message: run.message }).toEqual({ status: 'errored', message: expect.stringMatching(expected) });
    const { events } = await handle.fetchHistory();
    const attempts = (events ?? []).map((e) => e.activityTaskStartedEventAttributes?.attempt ?? 1);
    expect(Math.max(...attempts)).toBe(1);
    expect(fs.existsSync(outside)).toBe(false);
  });

  test('the worker runs an ordinary build afterwards', async () => {
    const run = await h.run(`plan:\n- task: after\n  config: {platform: linux, run: {path: sh, args: [-c, 'echo still here']}}\n`);
    expect(run.status).toBe('succeeded');
    expect(run.logs.get('plan.0')).toBe('still here\n');
  });
});

describe('a plan cannot take more of the worker than its own limits', () => {
  test('max_in_flight: all past the worker’s step slots: never more steps at once than the slots, and the build ends', async () => {
    // Enough parts at once (each PART_BUDGET steps) to ask for more than the worker's slots.
    const n = (Math.floor(WORKER_LIMITS.steps / PART_BUDGET) + 1) * PART_BUDGET;
    const log = path.join(dir, 'in-flight');
    // Steps run under the build's own uid (docs/security.md): they may reach and append to this file only.
    fs.chmodSync(dir, 0o711);
    fs.writeFileSync(log, '', { mode: 0o666 });
    fs.chmodSync(log, 0o666);
    // Each step appends +1 when it starts and -1 when it ends; the running sum is how many run at
    // once. Steps last long enough for the slots to fill while the worker is still starting more.
    const step = JSON.parse(sh('each', `echo "$(date +%s%N) 1" >> ${log}; sleep 15; echo "$(date +%s%N) -1" >> ${log}`));
    const across = [{ var: 'i', values: Array.from({ length: n }, (_, i) => i), max_in_flight: 'all' }];
    const run = await h.run(`plan:\n- ${JSON.stringify({ ...step, across })}\n`);
    expect({ status: run.status, message: run.message }).toEqual({ status: 'succeeded', message: undefined });
    const marks = fs
      .readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(' ').map(Number) as [number, number])
      // At the same instant an end counts before a start.
      .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    expect(marks).toHaveLength(2 * n);
    let running = 0;
    let peak = 0;
    for (const [, d] of marks) peak = Math.max(peak, (running += d));
    expect(peak).toBeLessThanOrEqual(WORKER_LIMITS.steps);
  }, 600_000);
});
