// Big builds on the local runtime: an `across` of N trivial tasks, all in flight
// (max_in_flight: all) or one at a time, for N = 1,000 / 5,000 / 10,000. Big lists run in
// child workflows (workflows/fanout.ts); this measures steps per second end to end and the
// peak memory of the process running the worker. Prints a table and writes its section of
// BENCHMARKS.md.
//
//   npm run bench:fanout -- [--runs all:1000,all:5000,all:10000,sequential:1000,...] [--out BENCHMARKS.md]
//
// The default runs every size both ways; a sequential 10,000 takes half an hour on a loaded
// 2-core machine, so pick runs with --runs there.
//
// Self-contained: it starts its own in-memory Temporal dev server and nats-server on free
// ports of 127.0.0.1 and one in-process Causeway local worker, and stops them at the end,
// on error and on Ctrl-C.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { bundleBuildWorkflows } from '../workers/bundle';
import pino from 'pino';
import { repoRoot, startStackOnFreePorts, stopStack } from '../cli/dev/stack';
import { awaitBuild, startBuild } from '../common/build-client';
import { fullStatus } from '../common/build-status';
import { compilePlan } from '../schemas';
import { PART_BUDGET, PARTS_IN_FLIGHT, SPLIT_AT } from '../workflows/fanout';
import { startLocalWorker, type RunningWorker } from '../workers/local';
import { WORKER_LIMITS } from '../workers/pollers';
import { loadavg, machine, runMain, writeSection } from './report';
import { causewayDataConverter, loadCodecKeys } from '../common/codec';

const MARK_START = '<!-- bench:fanout:start -->';
const MARK_END = '<!-- bench:fanout:end -->';

type Mode = 'all' | 'sequential';

interface Options {
  runs: { mode: Mode; steps: number }[];
  out: string;
}

interface Row {
  mode: Mode;
  steps: number;
  status: string;
  seconds: number;
  parts: number;
  peakRssMiB: number;
  statusSeconds: number;
  /** the longest history among the build and its parts, in events (Temporal stops a workflow at 51,200) */
  maxHistory: number;
  load: string;
}

function parseArgs(argv: string[]): Options {
  const sizes = [1000, 5000, 10000];
  const opts: Options = {
    runs: (['all', 'sequential'] as Mode[]).flatMap((mode) => sizes.map((steps) => ({ mode, steps }))),
    out: path.join(repoRoot(__dirname), 'BENCHMARKS.md'),
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === '--runs') {
      opts.runs = value()
        .split(',')
        .map((run) => {
          const [mode, n] = run.split(':');
          const steps = Number(n);
          if ((mode !== 'all' && mode !== 'sequential') || !Number.isInteger(steps) || steps < 1) {
            throw new Error(`--runs takes MODE:STEPS items (MODE all or sequential), e.g. all:1000,sequential:1000; got ${run}`);
          }
          return { mode: mode as Mode, steps };
        });
    } else if (flag === '--out') opts.out = path.resolve(value());
    else if (flag === '--help' || flag === '-h') {
      console.log('usage: node dist/bench/fanout.js [--runs all:1000,all:5000,all:10000,sequential:1000] [--out FILE=BENCHMARKS.md]');
      process.exit(0);
    } else throw new Error(`unknown argument ${argv[i]}`);
  }
  return opts;
}

/** Peak resident memory of this process since the last reset, in MiB (Linux: VmHWM, reset through clear_refs). */
function peakRss(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : process.memoryUsage().rss / 2 ** 20;
}

function resetPeakRss(): void {
  try {
    fs.writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    // Not Linux, or not allowed: the peak then covers the whole run so far.
  }
}

function planYaml(mode: Mode, steps: number): string {
  const task = { task: 'each', config: { platform: 'linux', run: { path: 'true' } } };
  const across = [{ var: 'i', values: Array.from({ length: steps }, (_, i) => i), max_in_flight: mode === 'all' ? 'all' : 1 }];
  return `plan:\n- ${JSON.stringify({ ...task, across })}\n`;
}

async function runOne(client: Client, taskQueue: string, mode: Mode, steps: number, progress: (m: string) => void): Promise<Row> {
  resetPeakRss();
  const plan = compilePlan({ text: planYaml(mode, steps), file: `fanout-${mode}-${steps}.yml` });
  const started = performance.now();
  const handle = await startBuild(client, { plan, taskQueue });
  const outcome = await awaitBuild(handle);
  const seconds = (performance.now() - started) / 1000;
  const peakRssMiB = peakRss();
  const statusStarted = performance.now();
  const status = await fullStatus(client, handle.workflowId);
  const statusSeconds = (performance.now() - statusStarted) / 1000;
  const workflowIds = [handle.workflowId, ...(status.parts ?? []).map((p) => p.workflowId)];
  let maxHistory = 0;
  for (const id of workflowIds) maxHistory = Math.max(maxHistory, (await client.workflow.getHandle(id).describe()).historyLength);
  const row = {
    mode,
    steps,
    status: outcome.status,
    seconds,
    parts: status.parts?.length ?? 0,
    peakRssMiB,
    statusSeconds,
    maxHistory,
    load: loadavg(),
  };
  progress(
    `${mode} ${steps}: ${outcome.status} in ${seconds.toFixed(1)} s (${(steps / seconds).toFixed(1)} steps/s), ${row.parts} parts, peak ${peakRssMiB.toFixed(0)} MiB, status in ${statusSeconds.toFixed(1)} s, longest history ${maxHistory} events`,
  );
  return row;
}

function table(rows: Row[]): string {
  const lines = [
    '| max_in_flight | steps | result | wall time | steps/s | child workflows | longest history | worker peak RSS | `status` (whole tree) | load average after |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.mode === 'all' ? 'all' : '1'} | ${r.steps} | ${r.status} | ${r.seconds.toFixed(1)} s | ${(r.steps / r.seconds).toFixed(1)} | ${r.parts} | ${r.maxHistory} events | ${r.peakRssMiB.toFixed(0)} MiB | ${r.statusSeconds.toFixed(1)} s | ${r.load} |`,
    );
  }
  return lines.join('\n');
}

function section(info: Record<string, string>, rows: Row[]): string {
  return [
    MARK_START,
    '## Big fan-out (`npm run bench:fanout`)',
    '',
    `An \`across\` of N trivial tasks (\`true\`) on the local runtime, all in flight or one at a time. Lists past ${SPLIT_AT} activities run in child workflows of at most ${PART_BUDGET} (workflows/fanout.ts), at most ${PARTS_IN_FLIGHT} parts of a list at once, so every history stays far from Temporal's limits. The worker bounds what runs at once by its own limits (workers/pollers.ts: ${WORKER_LIMITS.steps} steps, ${WORKER_LIMITS.workflowTasks} workflow tasks, ${WORKER_LIMITS.cachedWorkflows} cached workflows), never by the plan. Peak RSS is the bench process's (it holds the worker, whose activities spawn the steps, and the client). \`status\` is the time \`causeway status\` needs for the whole tree (common/build-status.ts); the longest history is the largest of the build's and its parts' (Temporal ends a workflow at 51,200 events).`,
    '',
    `Machine: ${info.cpus} CPUs, ${info.memory}, ${info.os}, Node ${info.node}, Temporal CLI ${info.temporal}; ${info.date}. **The machine was shared with seven other engineers' builds and tests while this ran** (load average at start: ${info.load}, per row in the table): the figures are lower bounds of what a quiet machine does.`,
    '',
    table(rows),
    MARK_END,
  ].join('\n');
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const progress = (message: string) => console.error(`[bench] ${message}`);
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-bench-fanout-'));
  let stackStarted = false;
  let worker: RunningWorker | undefined;
  let connection: Connection | undefined;
  // One cleanup, whoever asks first: after Ctrl-C the run fails as the stack goes, and its own
  // cleanup must wait for this one, or the exit cuts removing the home (32,000 step directories)
  // short. The client's connection closes last: a build still awaited retries its call, and a
  // retry on a closed channel throws where nothing catches it.
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      await worker?.shutdown().catch((err) => progress(`worker shutdown: ${(err as Error).message}`));
      if (stackStarted) await stopStack(home);
      await fs.promises.rm(home, { recursive: true, force: true });
      await connection?.close().catch(() => undefined);
    })());
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
    const workflowBundle = await bundleBuildWorkflows();
    const id = randomUUID().slice(0, 8);
    const taskQueue = `bench-fanout-${id}`;
    worker = await startLocalWorker({
      temporalAddress: stack.temporal.address,
      namespace: 'default',
      natsUrl: stack.nats.url,
      home,
      name: `bench-${id}`,
      taskQueue,
      logMaxAgeSeconds: 3600,
      workflowBundle,
      log: pino({ level: 'warn' }),
    });
    connection = await Connection.connect({ address: stack.temporal.address });
    const client = new Client({ connection, dataConverter: causewayDataConverter(loadCodecKeys({ home })) });

    const rows: Row[] = [];
    for (const run of opts.runs) {
      rows.push(await runOne(client, taskQueue, run.mode, run.steps, progress));
      // After every run: a long benchmark stopped half-way still leaves what it measured.
      writeSection(opts.out, { start: MARK_START, end: MARK_END }, section(info, rows));
    }
    console.log(`\nBig fan-out (${info.cpus} CPUs, Node ${info.node}, Temporal CLI ${info.temporal}, load ${info.load})\n`);
    console.log(table(rows));
    console.log(`\nwrote ${opts.out}`);
  } finally {
    await cleanup();
  }
}

runMain(main);
