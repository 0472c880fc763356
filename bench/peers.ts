// Causeway against the floor (the same work as a bash script) and against act (GitHub Actions'
// local runner, in host mode: steps run as host processes, as on Causeway's local runtime), on
// the workloads of issue 16, medians side by side in one run (runs interleaved). Causeway's
// figures are `causeway run FILE` as a user types it against a stack as `causeway dev up`
// starts it, so they include the CLI's start-up, as act's include its own.
// Prints a table and writes its section of BENCHMARKS.md, with the load at every row.
//
//   npm run bench:peers -- [--runs 5] [--artifact-mb 200] [--log-mb 50] [--only log,artifact,...] [--out BENCHMARKS.md]
//
// act is not a dependency of the product: it is installed here, once, with `go install`
// into ~/.cache/causeway/act-<version>.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { repoRoot, startStackOnFreePorts, stopStack } from '../cli/dev/stack';
import { cliRun } from './causeway-cli';
import { loadavg, machine, runMain, writeSection } from './report';

const MARKERS = { start: '<!-- bench:peers:start -->', end: '<!-- bench:peers:end -->' };
const ACT_VERSION = 'v0.2.89';
const ACT_BIN = path.join(os.homedir(), '.cache', 'causeway', `act-${ACT_VERSION}`, 'act');
/** act without its network habits: no version check, no artifact cache server, steps on the host. */
const ACT_ENV = { ACT_DISABLE_VERSION_CHECK: '1' };
const ACT_ARGS = ['-P', 'ubuntu-latest=-self-hosted', '--no-cache-server'];
/** A line of a step's output as act prints it. */
const ACT_OUTPUT_LINE = /^\[[^\]]*\] {3}\| (.*)$/;
const PARALLEL = 20;
const SEQUENTIAL = 20;
/** Goals of issue 16, each a ratio of medians of one run. */
const GOALS = { parallel: 1.2, handOff: 1.1, logsVsAct: 0.5 };

interface Sample {
  ms: number;
  /** false when the workload's output was not what it must be (a log not delivered byte for byte) */
  ok: boolean;
}

/** One workload as the three runners do it; act and Causeway as files in the run's directory. */
interface Workload {
  /** for --only and the goals below the table */
  key: 'one' | 'seq' | 'par' | 'artifact' | 'no-hand-off' | 'log' | 'version';
  name: string;
  floor: () => Promise<Sample>;
  causeway?: () => Promise<Sample>;
  act?: () => Promise<Sample>;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
}

/** Runs a command to its end; its wall time and stdout. */
function timed(
  file: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ ms: number; stdout: Buffer }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - t0;
      if (code !== 0) reject(new Error(`${file} ${args.join(' ')} exited ${code}: ${stderr.slice(-2000)}`));
      else resolve({ ms, stdout: Buffer.concat(out) });
    });
  });
}

/** act, installed once into the cache with the machine's Go. */
function ensureAct(say: (line: string) => void): string {
  if (fs.existsSync(ACT_BIN)) return ACT_BIN;
  say(`installing act ${ACT_VERSION} into ${path.dirname(ACT_BIN)} (go install, once)`);
  const r = spawnSync('go', ['install', `github.com/nektos/act@${ACT_VERSION}`], {
    env: { ...process.env, GOBIN: path.dirname(ACT_BIN) },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.status !== 0 || !fs.existsSync(ACT_BIN))
    throw new Error(`go install github.com/nektos/act@${ACT_VERSION} failed (exit ${r.status}); it needs Go and the Go module proxy`);
  return ACT_BIN;
}

const task = (name: string, config: Record<string, unknown>) => ({ task: name, config: { platform: 'linux', ...config } });
const sh = (script: string) => ({ path: 'sh', args: ['-c', script] });

/** A GitHub Actions workflow of jobs, each a list of `run` steps. */
function actWorkflow(jobs: Record<string, string[]>): string {
  return JSON.stringify({
    name: 'bench',
    on: 'push',
    jobs: Object.fromEntries(
      Object.entries(jobs).map(([id, steps]) => [id, { 'runs-on': 'ubuntu-latest', steps: steps.map((run) => ({ run })) }]),
    ),
  });
}

/** The log workload's lines: numbered, so a lost, doubled or reordered line shows. */
function logCommand(mb: number): { script: string; expected: Buffer } {
  const format = 'line %09.0f of a log all of which must be delivered';
  const lineBytes = 'line 000000001 of a log all of which must be delivered\n'.length;
  const lines = Math.ceil((mb * 2 ** 20) / lineBytes);
  const script = `seq -f '${format}' 1 ${lines}`;
  return { script, expected: spawnSync('sh', ['-c', script], { maxBuffer: 2 * mb * 2 ** 20 }).stdout };
}

async function main(): Promise<void> {
  const arg = (name: string, fallback: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : fallback;
  };
  const runs = Number(arg('runs', '5'));
  const artifactMb = Number(arg('artifact-mb', '200'));
  const logMb = Number(arg('log-mb', '50'));
  const out = arg('out', path.join(repoRoot(), 'BENCHMARKS.md'));
  const only = process.argv.includes('--only') ? arg('only', '').split(',') : undefined;
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const act = ensureAct(say);
  const actVersion = spawnSync(act, ['--version'], { encoding: 'utf8' }).stdout.trim();

  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-bench-peers-'));
  const work = path.join(home, 'work');
  const actRepo = path.join(home, 'act');
  fs.mkdirSync(work);
  fs.mkdirSync(path.join(actRepo, '.github', 'workflows'), { recursive: true });
  // act reads the event's ref and revision from the repository it runs in (and logs an error per step without one).
  for (const args of [
    ['init', '-q'],
    ['-c', 'user.name=bench', '-c', 'user.email=bench@localhost', 'commit', '-q', '--allow-empty', '-m', 'bench'],
  ])
    spawnSync('git', args, { cwd: actRepo, stdio: 'ignore' });
  const planFile = (name: string, plan: unknown[]) => {
    const file = path.join(home, `${name}.yml`);
    fs.writeFileSync(file, JSON.stringify({ name, plan }));
    return file;
  };
  const actFile = (name: string, jobs: Record<string, string[]>) => {
    const file = path.join(actRepo, '.github', 'workflows', `${name}.yml`);
    fs.writeFileSync(file, actWorkflow(jobs));
    return file;
  };
  const causeway = (file: string, check?: (stdout: Buffer) => boolean) => async (): Promise<Sample> => {
    const r = await cliRun(home, file, [], { stdout: check !== undefined });
    return { ms: r.ms, ok: check ? check(r.stdout ?? Buffer.alloc(0)) : true };
  };
  const actRun =
    (file: string, check?: (stdout: Buffer) => boolean, extra: string[] = []) =>
    async (): Promise<Sample> => {
      const r = await timed(act, ['-W', file, ...ACT_ARGS, ...extra], { cwd: actRepo, env: ACT_ENV });
      return { ms: r.ms, ok: check ? check(r.stdout) : true };
    };
  const bash = (script: string, check?: (stdout: Buffer) => boolean) => async (): Promise<Sample> => {
    const scratch = fs.mkdtempSync(path.join(work, 'floor-'));
    try {
      const r = await timed('bash', ['-c', script], { cwd: scratch });
      return { ms: r.ms, ok: check ? check(r.stdout) : true };
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  };

  const blob = `head -c ${artifactMb}M /dev/zero > out/blob`;
  const log = logCommand(logMb);
  // The step's bytes, in order and whole, somewhere in what the runner printed (Causeway adds a header and a footer line);
  // what it printed instead is kept for a look.
  const delivered = (stdout: Buffer) => {
    if (stdout.indexOf(log.expected) >= 0) return true;
    const kept = path.join(os.tmpdir(), `causeway-bench-peers-log-${Date.now()}.txt`);
    fs.writeFileSync(kept, stdout);
    say(`the log was not delivered whole (${stdout.length} bytes printed, ${log.expected.length} expected): kept in ${kept}`);
    return false;
  };
  // act prefixes every line of a step's output with `[workflow/job]   | `: the lines after it, in order and whole
  // (act prints one empty line more after a step's last newline; that one is not counted against it).
  const actDelivered = (stdout: Buffer) => {
    const lines = stdout
      .toString('utf8')
      .split('\n')
      .flatMap((l) => {
        const m = ACT_OUTPUT_LINE.exec(l);
        return m ? [`${m[1]}\n`] : [];
      });
    if (lines.at(-1) === '\n') lines.pop();
    return Buffer.from(lines.join('')).equals(log.expected);
  };

  const workloads: Workload[] = [
    {
      key: 'one',
      name: '1 step `true`',
      floor: bash('true'),
      causeway: causeway(planFile('one', [task('t', { run: { path: 'true' } })])),
      act: actRun(actFile('one', { j: ['true'] })),
    },
    {
      key: 'seq',
      name: `${SEQUENTIAL} sequential \`true\``,
      floor: bash(Array(SEQUENTIAL).fill('/bin/true').join('\n')),
      causeway: causeway(
        planFile(
          'seq',
          Array.from({ length: SEQUENTIAL }, (_, i) => task(`t${i}`, { run: { path: 'true' } })),
        ),
      ),
      act: actRun(actFile('seq', { j: Array(SEQUENTIAL).fill('true') })),
    },
    {
      key: 'par',
      name: `${PARALLEL} parallel \`sleep 1\``,
      floor: bash(`${'sleep 1 & '.repeat(PARALLEL)}wait`),
      causeway: causeway(
        planFile('par', [
          { in_parallel: Array.from({ length: PARALLEL }, (_, i) => task(`s${i}`, { run: { path: 'sleep', args: ['1'] } })) },
        ]),
      ),
      act: actRun(actFile('par', Object.fromEntries(Array.from({ length: PARALLEL }, (_, i) => [`s${i}`, ['sleep 1']]))), undefined, [
        '--concurrent-jobs',
        String(PARALLEL),
      ]),
    },
    {
      key: 'artifact',
      name: `${artifactMb} MB artifact handed from step 1 to step 2`,
      floor: bash(`mkdir out in && ${blob} && tar c -C out . | tar x -C in && ls in >/dev/null`),
      causeway: causeway(
        planFile('artifact', [
          task('produce', { outputs: [{ name: 'out' }], run: sh(blob) }),
          task('consume', { inputs: [{ name: 'out' }], run: sh('ls out >/dev/null') }),
        ]),
      ),
      act: actRun(actFile('artifact', { j: [`mkdir -p out && ${blob}`, 'ls out >/dev/null'] })),
    },
    {
      key: 'no-hand-off',
      name: `the same without the hand-off (step 2 takes no input)`,
      floor: bash(`mkdir out && ${blob} && ls out >/dev/null`),
      causeway: causeway(
        planFile('no-hand-off', [
          task('produce', { outputs: [{ name: 'out' }], run: sh(blob) }),
          task('consume', { run: sh('ls . >/dev/null') }),
        ]),
      ),
    },
    {
      key: 'log',
      name: `${logMb} MB of log lines, all delivered`,
      floor: bash(log.script, (stdout) => stdout.equals(log.expected)),
      causeway: causeway(planFile('log', [task('log', { run: sh(log.script) })]), delivered),
      act: actRun(actFile('log', { j: [log.script] }), actDelivered),
    },
    {
      key: 'version',
      name: '`causeway --version` (floor: `node -e 0`; act: `act --version`)',
      floor: async () => ({ ms: (await timed(process.execPath, ['-e', '0'])).ms, ok: true }),
      causeway: async () => ({ ms: (await timed(path.join(repoRoot(), 'bin', 'causeway'), ['--version'])).ms, ok: true }),
      act: async () => ({ ms: (await timed(act, ['--version'], { env: ACT_ENV })).ms, ok: true }),
    },
  ];

  try {
    // Persistent, as `causeway dev up` starts it.
    const stack = await startStackOnFreePorts({ home, persistent: true, startWorker: true, log: say });
    const about = machine(stack);
    const rows: string[][] = [];
    const medians = new Map<Workload['key'], { causeway?: number; floor: number; act?: number }>();
    for (const w of workloads.filter((x) => only === undefined || only.includes(x.key))) {
      const samples = { floor: [] as Sample[], causeway: [] as Sample[], act: [] as Sample[] };
      const load = loadavg();
      // One warm-up of each, then the runs interleaved so a change in the machine's load hits all three alike.
      for (let i = 0; i <= runs; i++) {
        for (const runner of ['floor', 'causeway', 'act'] as const) {
          const run = w[runner];
          if (!run) continue;
          const s = await run();
          if (i > 0) samples[runner].push(s);
        }
        say(`${w.name}: run ${i}/${runs} (load ${loadavg()})`);
      }
      const m = (xs: Sample[]) => (xs.length ? median(xs.map((s) => s.ms)) : undefined);
      const fmt = (x: number | undefined, xs: Sample[]) =>
        x === undefined
          ? ''
          : `${(x / 1000).toFixed(3)} s${xs.every((s) => s.ok) ? '' : ` (**${xs.filter((s) => !s.ok).length}/${xs.length} not delivered whole**)`}`;
      const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? '' : `${(a / b).toFixed(2)}×`);
      const med = { causeway: m(samples.causeway), floor: m(samples.floor) ?? 0, act: m(samples.act) };
      medians.set(w.key, med);
      rows.push([
        w.name,
        fmt(med.causeway, samples.causeway),
        fmt(med.floor, samples.floor),
        fmt(med.act, samples.act),
        ratio(med.causeway, med.floor),
        ratio(med.causeway, med.act),
        load,
      ]);
    }
    const at = (key: Workload['key']) => medians.get(key) ?? { floor: NaN, causeway: NaN, act: NaN };
    const handOff = (at('artifact').causeway ?? NaN) / (at('no-hand-off').causeway ?? NaN);
    const parallel = (at('par').causeway ?? NaN) / at('par').floor;
    const logsVsAct = (at('log').causeway ?? NaN) / (at('log').act ?? NaN);
    const met = (x: number, goal: number) =>
      Number.isNaN(x) ? 'not measured in this run' : `${x.toFixed(2)}× (goal ≤ ${goal}×: ${x <= goal ? 'met' : 'not met'})`;

    const header = ['workload (median)', 'Causeway', 'floor (bash)', 'act', 'Causeway/floor', 'Causeway/act', 'load at start'];
    const table = [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
    const text = `${MARKERS.start}
## Causeway against the floor and act (\`npm run bench:peers\`)

Medians of ${runs} runs after one warm-up, the three runners interleaved run by run. Causeway: \`causeway run FILE\`
(CLI start-up, connect, start, follow the log to the end) against a stack as \`causeway dev up\` starts it (dev server
with its SQLite file and the tuned dynamic config, nats-server, a worker process on the local runtime). Floor: the same commands in one
bash script (the artifact through \`tar c | tar x\`). act ${actVersion} in host mode (\`${ACT_ARGS.join(' ')}\`,
\`ACT_DISABLE_VERSION_CHECK=1\`): steps of a job share one workspace, so its artifact is never moved; parallel work is
${PARALLEL} jobs with \`--concurrent-jobs ${PARALLEL}\`. Logs are checked byte for byte against what the command prints
(act's lines once its \`[workflow/job]   | \` prefix is taken off, and the one empty line it adds at the end).

Machine: ${about.cpus} CPUs, ${about.memory} memory, ${about.os}; Node ${about.node}; Temporal CLI ${about.temporal};
run ${about.date}, load average at start ${about.load}, at the end ${loadavg()}.

${table}

- ${artifactMb} MB hand-off, Causeway with it / without it: ${met(handOff, GOALS.handOff)}. On one machine an input is an
  overlay view of the producer's output (activities/runtime/local/inputs.ts), so the hand-off costs one mount at any size.
- ${PARALLEL} parallel \`sleep 1\`, Causeway / floor: ${met(parallel, GOALS.parallel)}.
- ${logMb} MB of logs, Causeway / act: ${met(logsVsAct, GOALS.logsVsAct)}.

Rerun: \`npm run bench:peers\` (\`-- --runs 3 --artifact-mb 20 --log-mb 5\` for a quick look).
${MARKERS.end}`;
    console.log(table);
    writeSection(out, MARKERS, text);
  } finally {
    await stopStack(home);
    fs.rmSync(home, { recursive: true, force: true });
  }
}

runMain(main);
