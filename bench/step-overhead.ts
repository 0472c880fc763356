// Per-step cost of Causeway on the local runtime: a plan of N sequential trivial tasks
// (and N tasks in_parallel), side by side in one run with
//   (a) the same N processes spawned directly, and
//   (b) a bare Temporal workflow running N no-op activities on the same dev server.
// Prints a table and writes its section of BENCHMARKS.md.
//
//   npm run bench:step-overhead -- [--steps 100] [--repeat 3] [--out BENCHMARKS.md]
//
// Self-contained: it starts its own in-memory Temporal dev server and nats-server on free
// ports of 127.0.0.1, one in-process Causeway local worker and one bare worker, and stops
// all of them at the end, on error and on Ctrl-C.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime, Worker, type WorkflowBundle } from '@temporalio/worker';
import pino from 'pino';
import { repoRoot, startStackOnFreePorts, stopStack } from '../cli/dev/stack';
import { awaitBuild, startBuild } from '../common/build-client';
import { compilePlan } from '../schemas';
import type { CompiledPlan } from '../schemas/compiled';
import { startLocalWorker, type RunningWorker } from '../workers/local';
import { exitStatus, startProcess } from '../activities/runtime/local/process';
import * as bareActivities from './bare-activities';
import type { BareInput } from './bare-workflows';
import { breakdown, meanBreakdown, type Breakdown } from './history';
import { childPids, loadavg, machine, procCpuMs, runMain, writeSection } from './report';
import { causewayDataConverter, loadCodecKeys } from '../common/codec';
import { bundleBuildWorkflows, SILENT_BUNDLER_LOGGER } from '../workers/bundle';
import { PART_BUDGET } from '../workflows/fanout';

const MARK_START = '<!-- bench:step-overhead:start -->';
const MARK_END = '<!-- bench:step-overhead:end -->';
/** Issue 16: sequential steps within 1.2x of a bare Temporal activity loop on the same, tuned, server. */
const TARGET_RATIO = 1.2;
const WARMUP_STEPS = 10;

type Mode = 'sequential' | 'in_parallel';
const MODES: Mode[] = ['sequential', 'in_parallel'];

interface Options {
  steps: number;
  repeat: number;
  out: string;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { steps: PART_BUDGET, repeat: 3, out: path.join(repoRoot(__dirname), 'BENCHMARKS.md') };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.split('=', 2);
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const positive = (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer, got ${v}`);
      return n;
    };
    if (flag === '--steps') opts.steps = positive(value());
    else if (flag === '--repeat') opts.repeat = positive(value());
    else if (flag === '--out') opts.out = path.resolve(value());
    else if (flag === '--help' || flag === '-h') {
      console.log(`usage: node dist/bench/step-overhead.js [--steps N=${PART_BUDGET}] [--repeat R=3] [--out FILE=BENCHMARKS.md]`);
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}`);
  }
  // A longer list runs in child workflows (workflows/fanout.ts), whose steps the build's own history does not show.
  if (opts.steps > PART_BUDGET)
    throw new Error(
      `--steps ${opts.steps}: at most ${PART_BUDGET}, or the build runs its steps in child workflows and the per-step breakdown has none`,
    );
  return opts;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// ---------------------------------------------------------------- (a) direct spawn

function spawnTrue(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('true', [], { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`true exited ${code}`))));
  });
}

async function direct(mode: Mode, steps: number): Promise<number> {
  const t0 = performance.now();
  if (mode === 'sequential') {
    for (let i = 0; i < steps; i++) await spawnTrue();
  } else {
    await Promise.all(Array.from({ length: steps }, spawnTrue));
  }
  return performance.now() - t0;
}

/**
 * Diagnostic, sequential only: the local runtime's own way of starting a step (a detached
 * `sh` wrapper that records the exit status in a file, from activities/runtime/local/process.ts),
 * with a fresh step directory each time, but no Temporal and no NATS.
 */
async function wrapped(home: string, steps: number): Promise<number> {
  const root = path.join(home, 'wrapped');
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) {
    const dir = path.join(root, String(i));
    await fs.promises.mkdir(dir, { recursive: true });
    const proc = await startProcess({ dir, cwd: dir, command: ['true'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    await new Promise<void>((resolve) => (proc.child!.exitCode !== null ? resolve() : proc.child!.once('exit', () => resolve())));
    if ((await exitStatus(dir)) !== 0) throw new Error(`wrapped true in ${dir} did not record exit 0`);
  }
  const elapsed = performance.now() - t0;
  fs.rmSync(root, { recursive: true, force: true });
  return elapsed;
}

// ---------------------------------------------------------------- runs through Temporal

interface TimedRun {
  ms: number;
  handle: WorkflowHandle;
  cpu: Cpu;
}

/** CPU ms a run cost, by process: wall-clock figures on a shared machine only bound, these compare. */
interface Cpu {
  /** this process: the workers (Causeway's or the bare ones, whichever ran) and the client */
  worker: number;
  /** the process helper and the step processes it reaped */
  steps: number;
  temporal: number;
  nats: number;
}

const CPU_PARTS = ['worker', 'steps', 'temporal', 'nats'] as const;

/** The process helper (activities/runtime/local/spawner.ts): this process's child running `node -e`. */
function helperPid(): number | undefined {
  return childPids(process.pid).find((child) => {
    const argv = fs.readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0');
    return argv[0] === process.execPath && argv[1] === '-e';
  });
}

let cpuPids: { temporal: number; nats: number; helper?: number } | undefined;

function cpuNow(): Cpu {
  const self = process.cpuUsage();
  return {
    worker: (self.user + self.system) / 1000,
    steps: procCpuMs(cpuPids?.helper),
    temporal: procCpuMs(cpuPids?.temporal),
    nats: procCpuMs(cpuPids?.nats),
  };
}

async function measured(run: () => Promise<{ ms: number; handle: WorkflowHandle }>): Promise<TimedRun> {
  const before = cpuNow();
  const r = await run();
  const after = cpuNow();
  return { ...r, cpu: Object.fromEntries(CPU_PARTS.map((k) => [k, after[k] - before[k]])) as unknown as Cpu };
}

const cpuTotal = (c: Cpu): number => CPU_PARTS.reduce((sum, k) => sum + c[k], 0);

function bare(client: Client, taskQueue: string, mode: Mode, input: BareInput): Promise<TimedRun> {
  return measured(() => bareRun(client, taskQueue, mode, input));
}

async function bareRun(client: Client, taskQueue: string, mode: Mode, input: BareInput): Promise<{ ms: number; handle: WorkflowHandle }> {
  const t0 = performance.now();
  const handle = await client.workflow.start(mode === 'sequential' ? 'bareSequential' : 'bareParallel', {
    taskQueue,
    workflowId: `bench-bare-${randomUUID()}`,
    args: [input],
  });
  await handle.result();
  return { ms: performance.now() - t0, handle };
}

function planYaml(mode: Mode, steps: number): string {
  const tasks = Array.from({ length: steps }, (_, i) => ({ task: `t${i}`, config: { platform: 'linux', run: { path: 'true' } } }));
  // JSON is YAML: the plan goes through the same loader and compiler as `causeway run`.
  return JSON.stringify({ name: `bench-${mode}-${steps}`, plan: mode === 'sequential' ? tasks : [{ in_parallel: tasks }] });
}

function causeway(client: Client, taskQueue: string, mode: Mode, steps: number): Promise<TimedRun> {
  // Compiled before the CPU count starts: the client's work (`causeway run` compiles on the user's machine), not the worker's.
  const plan = compilePlan({ text: planYaml(mode, steps), file: 'step-overhead.yml' });
  return measured(() => causewayRun(client, taskQueue, plan));
}

async function causewayRun(client: Client, taskQueue: string, plan: CompiledPlan): Promise<{ ms: number; handle: WorkflowHandle }> {
  const t0 = performance.now();
  const handle = await startBuild(client, { plan, taskQueue });
  const outcome = await awaitBuild(handle);
  const elapsed = performance.now() - t0;
  if (outcome.status !== 'succeeded') throw new Error(`Causeway build ${handle.workflowId} ${outcome.status}: ${outcome.message ?? ''}`);
  return { ms: elapsed, handle };
}

async function historyBreakdown(run: TimedRun, activityType: string, mode: Mode): Promise<Breakdown> {
  const history = await run.handle.fetchHistory();
  return breakdown(history.events ?? [], activityType, mode === 'sequential');
}

// ---------------------------------------------------------------- report

interface Row {
  mode: Mode;
  direct: number[];
  bare: number[];
  bareSplit: number[];
  wrapped: number[];
  causeway: number[];
  causewayBreakdown: Breakdown;
  bareBreakdown: Breakdown;
  bareSplitBreakdown: Breakdown;
  causewayCpu: Cpu[];
  bareCpu: Cpu[];
  bareSplitCpu: Cpu[];
}

interface Summary {
  mode: Mode;
  direct: number;
  bare: number;
  bareSplit: number;
  wrapped: number;
  causeway: number;
  perStep: number;
  overheadPerStep: number;
  ratio: number;
  met: boolean;
}

function summarize(row: Row, steps: number): Summary {
  const d = median(row.direct);
  const b = median(row.bare);
  const c = median(row.causeway);
  const ratio = c / b;
  return {
    mode: row.mode,
    direct: d,
    bare: b,
    bareSplit: median(row.bareSplit),
    wrapped: row.wrapped.length ? median(row.wrapped) : NaN,
    causeway: c,
    perStep: c / steps,
    overheadPerStep: (c - d) / steps,
    ratio,
    met: ratio <= TARGET_RATIO,
  };
}

const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : '–');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '–');

function markdownTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

/** Median CPU ms per step of each process, per variant: what a step costs the machine, whatever the load. */
function cpuTable(rows: Row[], steps: number): string {
  const out: string[][] = [];
  for (const row of rows) {
    const bareTotal = median(row.bareSplitCpu.map(cpuTotal)) / steps;
    const entries: Array<[string, Cpu[]]> = [
      ['bare, same queue', row.bareCpu],
      ['bare, separate activity queue', row.bareSplitCpu],
      ['Causeway', row.causewayCpu],
    ];
    for (const [who, cpus] of entries) {
      const total = median(cpus.map(cpuTotal)) / steps;
      out.push([row.mode, who, ...CPU_PARTS.map((k) => f2(median(cpus.map((c) => c[k])) / steps)), f2(total), `${f2(total / bareTotal)}x`]);
    }
  }
  return markdownTable(
    [
      'plan',
      'run',
      'worker process CPU ms/step',
      'process helper + step processes',
      'Temporal server',
      'nats-server',
      'total CPU ms/step',
      '× bare, separate queue',
    ],
    out,
  );
}

function resultTable(summaries: Summary[], steps: number): string {
  return markdownTable(
    [
      `${steps} tasks`,
      '(a) direct spawn total ms',
      '(b) bare Temporal total ms',
      'Causeway total ms',
      'Causeway ms/step',
      'overhead over (a) ms/step',
      'ratio Causeway/(b)',
      `target ≤ ${TARGET_RATIO}x met`,
    ],
    summaries.map((s) => [
      s.mode,
      f0(s.direct),
      f0(s.bare),
      f0(s.causeway),
      f2(s.perStep),
      f2(s.overheadPerStep),
      `${f2(s.ratio)}x`,
      s.met ? 'yes' : 'no',
    ]),
  );
}

function breakdownTable(rows: Row[]): string {
  const out: string[][] = [];
  for (const row of rows) {
    const entries: Array<[string, Breakdown]> = [
      ['Causeway', row.causewayBreakdown],
      ['bare, same queue', row.bareBreakdown],
      ['bare, separate activity queue', row.bareSplitBreakdown],
    ];
    for (const [who, b] of entries) {
      out.push([
        row.mode,
        who,
        f2(b.queueMs),
        f2(b.runMs),
        f2(b.turnaroundMs ?? NaN),
        b.turnaroundMs === undefined
          ? '–'
          : `${f2(b.wftScheduleMs!)} / ${f2(b.wftQueueMs!)} / ${f2(b.wftRunMs!)} / ${f2(b.wftToScheduleMs!)}`,
        f0(b.beforeFirstMs),
        f0(b.afterLastMs),
        f0(b.spanMs),
      ]);
    }
  }
  return markdownTable(
    [
      'plan',
      'run',
      'queue ms (Sched→Started)',
      'activity run ms (Started→Completed)',
      'WFT turnaround ms (Completed→next Sched)',
      'turnaround parts ms: →WFT sched / WFT queue / WFT run / →act sched',
      'before 1st step ms',
      'after last step ms',
      'span 1st Sched→last Completed ms',
    ],
    out,
  );
}

/** Where Causeway's sequential time goes beyond the bare floor, phase by phase, from the histories. */
function attribution(rows: Row[], summaries: Summary[], steps: number): string[] {
  const row = rows.find((r) => r.mode === 'sequential');
  const sum = summaries.find((s) => s.mode === 'sequential');
  if (!row || !sum) return [];
  const c = row.causewayBreakdown;
  const b = row.bareSplitBreakdown;
  const extra = (sum.causeway - sum.bareSplit) / steps;
  const fixed = c.beforeFirstMs + c.afterLastMs - (b.beforeFirstMs + b.afterLastMs);
  const floorHops = b.queueMs + (b.wftQueueMs ?? NaN);
  return [
    `Sequential, Causeway vs. the bare floor on a separate activity queue (the same topology): ${f2(extra)} ms/step more in total, of which`,
    `activity run time ${f2(c.runMs - b.runMs)} ms (${f2(c.runMs)} vs ${f2(b.runMs)}: the local runtime's work inside \`runTask\`),`,
    `activity queue latency ${f2(c.queueMs - b.queueMs)} ms, workflow-task turnaround ${f2((c.turnaroundMs ?? NaN) - (b.turnaroundMs ?? NaN))} ms`,
    `(workflow code ${f2((c.wftRunMs ?? NaN) - (b.wftRunMs ?? NaN))} ms), and the build's fixed cost before the first and after the last step`,
    `(prepareBuild, finishBuild, status) ${f0(fixed)} ms in all, ${f2(fixed / steps)} ms/step.`,
    `Both pay the same two server dispatches per step (activity queue + workflow-task queue): ${f2(floorHops)} ms of the floor's`,
    `${f2(sum.bareSplit / steps)} ms/step. Causeway's longer activity shortens its own dispatch waits (queue + turnaround`,
    `${f2(c.queueMs + (c.turnaroundMs ?? NaN))} ms vs ${f2(b.queueMs + (b.turnaroundMs ?? NaN))} ms), so while a dispatch costs tens of ms the`,
    `runtime's ${f2(c.runMs - b.runMs)} ms/step is mostly hidden; with fast dispatch it would show in full.`,
    ...parallelAttribution(rows, summaries),
  ];
}

function parallelAttribution(rows: Row[], summaries: Summary[]): string[] {
  const row = rows.find((r) => r.mode === 'in_parallel');
  const sum = summaries.find((s) => s.mode === 'in_parallel');
  if (!row || !sum) return [];
  const c = row.causewayBreakdown;
  const b = row.bareSplitBreakdown;
  return [
    '',
    `in_parallel: all steps are scheduled in one workflow task; Causeway's span from the first step scheduled to the last`,
    `completed is ${f0(c.spanMs)} ms against ${f0(b.spanMs)} ms bare, and a \`runTask\` activity runs ${f0(c.runMs)} ms on average`,
    `(bare no-op: ${f0(b.runMs)} ms) while the same processes spawned directly all at once take ${f0(sum.direct)} ms: the steps`,
    `compete for the worker's event loop and ${os.cpus().length} CPUs (per step: step directory, sh wrapper + command forked by the process helper,`,
    `two JetStream events, the exit event, heartbeats), so this row measures the runtime's parallel throughput.`,
  ];
}

function section(opts: Options, info: Record<string, string>, summaries: Summary[], rows: Row[]): string {
  const seq = summaries.find((s) => s.mode === 'sequential');
  const par = summaries.find((s) => s.mode === 'in_parallel');
  const verdict = (s: Summary | undefined) => (s ? `${f2(s.ratio)}x (${s.met ? 'met' : 'not met'})` : '–');
  return [
    MARK_START,
    '## Step overhead (local runtime)',
    '',
    `What a step costs in Causeway on the local runtime: a plan of ${opts.steps} trivial tasks (\`run: {path: "true"}\`),`,
    `sequential and in one \`in_parallel\`, against (a) the same ${opts.steps} processes spawned directly from Node and`,
    `(b) a bare Temporal workflow running ${opts.steps} no-op activities on the same dev server (the floor any`,
    'Temporal-based engine pays). Totals are wall-clock from the client: start of the workflow to its result',
    `(for Causeway this includes the build's prepareBuild/finishBuild activities). Median of ${opts.repeat} runs,`,
    `each variant warmed up once with ${WARMUP_STEPS} steps first. Target: Causeway within ${TARGET_RATIO}x of (b).`,
    '',
    `Machine: ${info.cpus} CPUs, ${info.memory} memory, ${info.os}; Node ${info.node}; Temporal CLI ${info.temporal}`,
    `(dev server, in memory, \`history.transferProcessorMaxPollRPS=1000\` as a production cluster would run it: docs/production.md);`,
    `run ${info.date}, load average at start ${info.load}, at the end ${loadavg()}.`,
    '',
    resultTable(summaries, opts.steps),
    '',
    `Sequential ratio: ${verdict(seq)}; in_parallel ratio: ${verdict(par)}.`,
    '',
    `Bare floor with the activities on a queue of their own (as Causeway's steps run on the worker's own queue, so the`,
    `server cannot hand them out eagerly with the workflow task): sequential ${f0(seq?.bareSplit ?? NaN)} ms,`,
    `in_parallel ${f0(par?.bareSplit ?? NaN)} ms. The local runtime's process start alone (its detached \`sh\``,
    `wrapper recording the exit status in a file, fresh step directory, no Temporal or NATS), ${opts.steps} sequential:`,
    `${f0(seq?.wrapped ?? NaN)} ms (${f2((seq?.wrapped ?? NaN) / opts.steps)} ms/step).`,
    '',
    '### CPU per step',
    '',
    'What a step costs the machine, from `process.cpuUsage()` of this process (the worker under test, with the client)',
    'and `/proc/<pid>/stat` of the process helper (with the step processes it reaped), the Temporal dev server and',
    'nats-server, over each run: wall-clock figures on a loaded machine only bound, these compare.',
    '',
    cpuTable(rows, opts.steps),
    '',
    "### Where a step's time goes (from the workflow histories)",
    '',
    'Event-time averages per step activity (`runTask` for Causeway, `noop` for bare) over the measured runs.',
    'Turnaround parts: activity Completed → WorkflowTaskScheduled / WFT Scheduled → Started (waiting for the',
    'worker) / WFT Started → Completed (workflow code on the worker) / WFT Completed → next ActivityTaskScheduled.',
    '',
    breakdownTable(rows),
    '',
    ...attribution(rows, summaries, opts.steps),
    '',
    '### Reproduce',
    '',
    '```',
    'npm run bench:step-overhead                       # 100 steps, median of 3',
    'npm run bench:step-overhead -- --steps 50 --repeat 5',
    '```',
    '',
    'It provisions the Temporal CLI and nats-server (cached under `~/.cache/causeway`), starts its own in-memory',
    'stack on free ports of 127.0.0.1, and stops it when done. Run it on an otherwise idle machine.',
    MARK_END,
  ].join('\n');
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const progress = (message: string) => console.error(`[bench] ${message}`);
  Runtime.install({ logger: new DefaultLogger('WARN') });

  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-bench-'));
  let stackStarted = false;
  let causewayWorker: RunningWorker | undefined;
  let bareWorkers: Worker[] = [];
  let bareDone: Promise<unknown> | undefined;
  let bareConnection: NativeConnection | undefined;
  let connection: Connection | undefined;

  const cleanup = async () => {
    for (const w of bareWorkers) if (w.getState() === 'RUNNING') w.shutdown();
    await bareDone?.catch(() => undefined);
    bareWorkers = [];
    await causewayWorker?.shutdown().catch((err) => progress(`worker shutdown: ${(err as Error).message}`));
    causewayWorker = undefined;
    await connection?.close().catch(() => undefined);
    await bareConnection?.close().catch(() => undefined);
    if (stackStarted) await stopStack(home);
    stackStarted = false;
    fs.rmSync(home, { recursive: true, force: true });
  };
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    progress(`${signal}: stopping the stack`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const stack = await startStackOnFreePorts({ home, persistent: false, startWorker: false, log: progress });
    stackStarted = true;
    const info = machine(stack);

    progress('bundling workflow code');
    const causewayBundle: WorkflowBundle = await bundleBuildWorkflows();
    const bareBundle: WorkflowBundle = await bundleWorkflowCode({
      workflowsPath: require.resolve('./bare-workflows'),
      logger: SILENT_BUNDLER_LOGGER,
    });

    const id = randomUUID().slice(0, 8);
    const causewayQueue = `bench-causeway-${id}`;
    const bareQueue = `bench-bare-${id}`;
    const bareActivityQueue = `bench-bare-acts-${id}`;
    causewayWorker = await startLocalWorker({
      temporalAddress: stack.temporal.address,
      namespace: 'default',
      natsUrl: stack.nats.url,
      home,
      name: `bench-${id}`,
      taskQueue: causewayQueue,
      logMaxAgeSeconds: 3600,
      workflowBundle: causewayBundle,
      log: pino({ level: 'warn' }),
    });
    cpuPids = { temporal: stack.temporal.pid, nats: stack.nats.pid, helper: helperPid() };
    bareConnection = await NativeConnection.connect({ address: stack.temporal.address });
    const common = {
      connection: bareConnection,
      namespace: 'default',
      activities: bareActivities,
      maxConcurrentActivityTaskExecutions: 1000,
    };
    bareWorkers = [
      await Worker.create({ ...common, taskQueue: bareQueue, workflowBundle: bareBundle }),
      await Worker.create({ ...common, taskQueue: bareActivityQueue }),
    ];
    bareDone = Promise.all(bareWorkers.map((w) => w.run()));
    connection = await Connection.connect({ address: stack.temporal.address });
    const client = new Client({ connection, dataConverter: causewayDataConverter(loadCodecKeys({ home })) });
    // The bare floor has no payload codec: encrypting payloads is Causeway's own cost (bench/codec).
    const bareClient = new Client({ connection });

    progress(`warming up (${WARMUP_STEPS} steps each)`);
    for (const mode of MODES) {
      await direct(mode, WARMUP_STEPS);
      if (mode === 'sequential') await wrapped(home, WARMUP_STEPS);
      await bare(bareClient, bareQueue, mode, { steps: WARMUP_STEPS });
      await bare(bareClient, bareQueue, mode, { steps: WARMUP_STEPS, activityQueue: bareActivityQueue });
      await causeway(client, causewayQueue, mode, WARMUP_STEPS);
    }

    const rows: Row[] = [];
    for (const mode of MODES) {
      const row = {
        mode,
        direct: [],
        bare: [],
        bareSplit: [],
        wrapped: [],
        causeway: [],
        causewayCpu: [],
        bareCpu: [],
        bareSplitCpu: [],
      } as unknown as Row;
      const cb: Breakdown[] = [];
      const bb: Breakdown[] = [];
      const sb: Breakdown[] = [];
      for (let r = 1; r <= opts.repeat; r++) {
        // Interleaved, so drift over the run (GC, server state) touches every variant alike.
        row.direct.push(await direct(mode, opts.steps));
        if (mode === 'sequential') row.wrapped.push(await wrapped(home, opts.steps));
        const b = await bare(bareClient, bareQueue, mode, { steps: opts.steps });
        row.bare.push(b.ms);
        row.bareCpu.push(b.cpu);
        const s = await bare(bareClient, bareQueue, mode, { steps: opts.steps, activityQueue: bareActivityQueue });
        row.bareSplit.push(s.ms);
        row.bareSplitCpu.push(s.cpu);
        const c = await causeway(client, causewayQueue, mode, opts.steps);
        row.causeway.push(c.ms);
        row.causewayCpu.push(c.cpu);
        bb.push(await historyBreakdown(b, 'noop', mode));
        sb.push(await historyBreakdown(s, 'noop', mode));
        cb.push(await historyBreakdown(c, 'runTask', mode));
        progress(
          `${mode} run ${r}/${opts.repeat}: direct ${f0(row.direct.at(-1)!)} ms, bare ${f0(b.ms)} ms, ` +
            `bare (separate queue) ${f0(s.ms)} ms, Causeway ${f0(c.ms)} ms`,
        );
      }
      row.causewayBreakdown = meanBreakdown(cb);
      row.bareBreakdown = meanBreakdown(bb);
      row.bareSplitBreakdown = meanBreakdown(sb);
      rows.push(row);
    }

    const summaries = rows.map((row) => summarize(row, opts.steps));
    console.log(
      `\nStep overhead, ${opts.steps} trivial tasks, median of ${opts.repeat} (${info.cpus} CPUs, Node ${info.node}, Temporal CLI ${info.temporal})\n`,
    );
    console.log(resultTable(summaries, opts.steps));
    console.log(`\nBare floor with activities on a separate queue: ${summaries.map((s) => `${s.mode} ${f0(s.bareSplit)} ms`).join(', ')}`);
    const seqSummary = summaries.find((s) => s.mode === 'sequential');
    if (seqSummary)
      console.log(
        `Local runtime's sh wrapper alone (no Temporal, no NATS), sequential: ${f0(seqSummary.wrapped)} ms (${f2(seqSummary.wrapped / opts.steps)} ms/step)`,
      );
    console.log(`\nCPU per step (median of ${opts.repeat}):\n`);
    console.log(cpuTable(rows, opts.steps));
    console.log('\nPer-step breakdown from workflow histories (averages):\n');
    console.log(breakdownTable(rows));
    console.log(`\n${attribution(rows, summaries, opts.steps).join('\n')}`);
    writeSection(opts.out, { start: MARK_START, end: MARK_END }, section(opts, info, summaries, rows));
    console.log(`\nwrote ${opts.out}`);
  } finally {
    await cleanup();
  }
}

runMain(main);
