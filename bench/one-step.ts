// The latency of the smallest build: `causeway run` of a one-step plan (`run: {path: "true"}`),
// end to end as a user runs it against the embedded stack (`causeway dev up`: dev server,
// nats-server, a worker process and the codec server), and the same build started from a
// client already connected, with where the time goes read from each build's history.
// Prints a table and writes its section of BENCHMARKS.md, with the machine's load next to
// every figure: the machine is shared.
//
//   npm run bench:one-step -- [--runs 20] [--out BENCHMARKS.md]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { temporal } from '@temporalio/proto';
import { repoRoot, startStackOnFreePorts, stopStack } from '../cli/dev/stack';
import { awaitBuild, startBuild } from '../common/build-client';
import { connectNats } from '../common/nats';
import { connectTemporalClient } from '../common/temporal-connection';
import { compilePlan } from '../schemas';
import { cliRun } from './causeway-cli';
import { loadavg, machine, runMain, writeSection } from './report';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

const MARKERS = { start: '<!-- bench:one-step:start -->', end: '<!-- bench:one-step:end -->' };
const GOAL_MS = 250;
const WARMUP_RUNS = 2;
const PLAN = `name: one-step
plan:
- task: one
  config: {platform: linux, run: {path: "true"}}
`;

/** The phases of a one-step build, each from one history event to the next one named. */
const PHASES = [
  'start → first workflow task started',
  'first workflow task (prepareBuild, a local activity)',
  'runTask queued (Scheduled → Started)',
  'runTask ran (Started → Completed)',
  'runTask completed → finishBuild scheduled',
  'finishBuild queued and ran',
  'finishBuild completed → build completed',
] as const;

function ms(event: HistoryEvent | undefined): number {
  const t = event?.eventTime;
  if (!t) throw new Error('a history event without a time');
  return Number(t.seconds ?? 0) * 1000 + (t.nanos ?? 0) / 1e6;
}

/** Milliseconds of each phase of one build's history. */
function phases(events: HistoryEvent[]): number[] {
  const find = (pred: (e: HistoryEvent) => unknown, from = 0) => {
    const i = events.findIndex((e, j) => j >= from && pred(e));
    if (i < 0) throw new Error('the history lacks an event the one-step breakdown needs');
    return i;
  };
  const activity = (name: string) => find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === name);
  const started = find((e) => e.workflowExecutionStartedEventAttributes);
  const wft1Started = find((e) => e.workflowTaskStartedEventAttributes);
  const wft1Completed = find((e) => e.workflowTaskCompletedEventAttributes);
  const runSched = activity('runTask');
  const runStarted = find((e) => e.activityTaskStartedEventAttributes, runSched);
  const runDone = find((e) => e.activityTaskCompletedEventAttributes, runStarted);
  const finishSched = activity('finishBuild');
  const finishDone = find((e) => e.activityTaskCompletedEventAttributes, finishSched);
  const ended = find((e) => e.workflowExecutionCompletedEventAttributes);
  const at = (i: number) => ms(events[i]);
  return [
    at(wft1Started) - at(started),
    at(wft1Completed) - at(wft1Started),
    at(runStarted) - at(runSched),
    at(runDone) - at(runStarted),
    at(finishSched) - at(runDone),
    at(finishDone) - at(finishSched),
    at(ended) - at(finishDone),
  ];
}

function percentile(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/**
 * Wall time of a new Node process that starts `causeway run` and loads the run command's modules, up to
 * reading the plan (a file that is not there, so it stops there): through bin/causeway (Node started from
 * the client bundle's startup snapshot), `node bin/causeway` (the bundle, from V8's code cache), or
 * `dist/cli/main.js` (each module from dist/ and node_modules as it is).
 */
function moduleLoadMs(home: string, entry: 'bin' | 'cache' | 'dist'): number {
  const args = ['run', path.join(home, 'not-there.yml')];
  const bin = path.join(repoRoot(), 'bin', 'causeway');
  const [file, argv]: [string, string[]] =
    entry === 'bin'
      ? [bin, args]
      : [process.execPath, [entry === 'cache' ? bin : path.join(repoRoot(), 'dist', 'cli', 'main.js'), ...args]];
  const t0 = performance.now();
  const r = spawnSync(file, argv, {
    env: { ...process.env, CAUSEWAY_HOME: home },
    encoding: 'utf8',
  });
  const elapsed = performance.now() - t0;
  if (!/not-there\.yml/.test(r.stderr)) throw new Error(`causeway run of a missing plan did not say so: ${r.stderr}`);
  return elapsed;
}

/**
 * CPU ms of this process's children that have ended (and were waited for): /proc/self/stat's cutime
 * and cstime, in USER_HZ (100 on Linux). Around one CLI run it is that run's CPU, which the load moves far less than its wall time.
 */
function childrenCpuMs(): number {
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

/** Opening and closing the two connections a CLI command opens (Temporal with the codec, NATS), modules already loaded. */
async function connectMs(stack: { temporal: { address: string }; nats: { url: string } }, home: string): Promise<number> {
  const t0 = performance.now();
  const [temporal, nc] = await Promise.all([
    connectTemporalClient({ address: stack.temporal.address, home }),
    connectNats(stack.nats.url, 'bench-one-step', { home }),
  ]);
  const elapsed = performance.now() - t0;
  await Promise.all([nc.close(), temporal.connection.close()]);
  return elapsed;
}

async function main(): Promise<void> {
  const arg = (name: string, fallback: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : fallback;
  };
  const runs = Number(arg('runs', '20'));
  const out = arg('out', path.join(repoRoot(), 'BENCHMARKS.md'));
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-bench-one-step-'));
  const file = path.join(home, 'one-step.yml');
  fs.writeFileSync(file, PLAN);
  const say = (line: string) => process.stderr.write(`${line}\n`);
  try {
    // Persistent, as `causeway dev up` starts it: a user's warm stack keeps its builds in the dev server's SQLite file.
    const stack = await startStackOnFreePorts({ home, persistent: true, startWorker: true, log: say });
    const about = machine(stack);
    const { client, connection } = await connectTemporalClient({ address: stack.temporal.address, home });
    const plan = compilePlan({ text: PLAN, file });
    const loadBefore = loadavg();
    const cli: number[] = [];
    const detached: number[] = [];
    const loads: number[] = [];
    const cacheLoads: number[] = [];
    const distLoads: number[] = [];
    const connects: number[] = [];
    const inProcess: number[] = [];
    const parts: number[][] = [];
    const cpu = {
      cli: [] as number[],
      detached: [] as number[],
      loads: [] as number[],
      cacheLoads: [] as number[],
      distLoads: [] as number[],
    };
    try {
      for (let i = 0; i < WARMUP_RUNS + runs; i++) {
        const c0 = childrenCpuMs();
        const r = await cliRun(home, file);
        const c1 = childrenCpuMs();
        const d = await cliRun(home, file, ['--detach']);
        const c2 = childrenCpuMs();
        await awaitBuild(client.workflow.getHandle(d.buildId));
        const t0 = performance.now();
        const handle = await startBuild(client, { plan, taskQueue: 'causeway' });
        const outcome = await awaitBuild(handle);
        const elapsed = performance.now() - t0;
        if (outcome.status !== 'succeeded') throw new Error(`the one-step build ${handle.workflowId} ${outcome.status}`);
        if (i < WARMUP_RUNS) continue;
        loads.push(moduleLoadMs(home, 'bin'));
        const c3 = childrenCpuMs();
        cacheLoads.push(moduleLoadMs(home, 'cache'));
        const c4 = childrenCpuMs();
        distLoads.push(moduleLoadMs(home, 'dist'));
        cpu.loads.push(c3 - c2);
        cpu.cacheLoads.push(c4 - c3);
        cpu.distLoads.push(childrenCpuMs() - c4);
        cpu.cli.push(c1 - c0);
        cpu.detached.push(c2 - c1);
        connects.push(await connectMs(stack, home));
        cli.push(r.ms);
        detached.push(d.ms);
        inProcess.push(elapsed);
        for (const id of [r.buildId, handle.workflowId])
          parts.push(phases((await client.workflow.getHandle(id).fetchHistory()).events ?? []));
        say(
          `run ${i + 1 - WARMUP_RUNS}/${runs}: causeway run ${r.ms.toFixed(0)} ms, --detach ${d.ms.toFixed(0)} ms, client ${elapsed.toFixed(0)} ms (load ${loadavg()})`,
        );
      }
    } finally {
      await connection.close();
    }
    const loadAfter = loadavg();
    const row = (label: string, xs: number[], cpuMs?: number[]) =>
      `| ${label} | ${percentile(xs, 50).toFixed(0)} | ${percentile(xs, 95).toFixed(0)} | ${Math.min(...xs).toFixed(0)} | ${cpuMs ? (cpuMs.reduce((a, b) => a + b, 0) / cpuMs.length).toFixed(0) : '–'} |`;
    const p50 = (xs: number[]) => percentile(xs, 50).toFixed(0);
    const mean = (i: number) => parts.reduce((a, p) => a + p[i], 0) / parts.length;
    const median = (i: number) =>
      percentile(
        parts.map((p) => p[i]),
        50,
      );
    const table = [
      '| one-step build | p50 ms | p95 ms | min ms | CLI process CPU ms (mean) |',
      '|---|---|---|---|---|',
      row('`causeway run` (a new process: start-up, connect, start, follow the log, result)', cli, cpu.cli),
      row('`causeway run --detach` (start-up, connect, start; no following)', detached, cpu.detached),
      row('client already connected: start → result', inProcess),
      row('of the CLI: a new Node process loading the `run` command’s modules (from the startup snapshot)', loads, cpu.loads),
      row('the same through `node bin/causeway`: the bundle from V8’s code cache, no snapshot (before)', cacheLoads, cpu.cacheLoads),
      row('the same from dist/ as tsc writes it, without the bundle', distLoads, cpu.distLoads),
      row('of the CLI: opening its Temporal and NATS connections (at once)', connects),
    ].join('\n');
    const breakdownTable = [
      '| phase (from the history) | median ms | mean ms |',
      '|---|---|---|',
      ...PHASES.map((name, i) => `| ${name} | ${median(i).toFixed(1)} | ${mean(i).toFixed(1)} |`),
    ].join('\n');
    const text = `${MARKERS.start}
## One-step build latency (\`npm run bench:one-step\`)

\`causeway run\` of a plan with one task (\`run: {path: "true"}\`) against a stack as \`causeway dev up\`
starts it (dev server with its SQLite file, nats-server, a worker process, the codec server), ${runs} runs after
${WARMUP_RUNS} warm-ups, and the same build started from a client already connected. Goal: ${GOAL_MS} ms.

Machine: ${about.cpus} CPUs, ${about.memory} memory, ${about.os}; Node ${about.node}; Temporal CLI ${about.temporal};
run ${about.date}. **Load average (1, 5, 15 min) before: ${loadBefore}; after: ${loadAfter}** (the machine is shared:
under load these figures are upper bounds).

${table}

Of \`causeway run\`'s p50 of ${p50(cli)} ms, a new Node process loading its modules takes ${p50(loads)} ms and opening
its two connections ${p50(connects)} ms (p50s); the build itself, from a connected client, ${p50(inProcess)} ms. The goal
is met by the build (start → result) ${percentile(inProcess, 50) <= GOAL_MS ? 'at' : 'not at'} p50 on this run; what
\`causeway run\` adds is the CLI's start-up. A client command starts Node from a startup snapshot of the client
bundle with protobufjs's reflection of Temporal's API, zod and the plan schemas already built (docs/cli.md, "Start-up"):
the same bundle compiled from V8's code cache takes ${p50(cacheLoads)} ms here, and the modules from dist/ one by one
${p50(distLoads)} ms. What is left is Node's own start (\`node -e 0\`, ~25 ms here without \`NODE_EXTRA_CA_CERTS\`, which the CLI reads
only for a TLS connection: docs/cli.md), reading the snapshot, and what Node
cannot snapshot: gRPC and NATS with Node's http2, net and tls, loaded in every process.

Where a build's time goes (both kinds of runs, ${parts.length} histories):

${breakdownTable}

Each Temporal dispatch (a workflow task or an activity task handed to the worker through the server)
is one of the rows above; a one-step build needs four of them after the start (the first workflow
task, runTask, the workflow task that schedules finishBuild, finishBuild) and one more to complete.
${MARKERS.end}`;
    console.log(`${table}\n\n${breakdownTable}`);
    writeSection(out, MARKERS, text);
  } finally {
    await stopStack(home);
    fs.rmSync(home, { recursive: true, force: true });
  }
}

runMain(main);
