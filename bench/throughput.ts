// Throughput: one-step builds (`run: {path: "true"}`) per second with 1, 2 and 4 worker processes
// on this machine, all the builds submitted at once from one client. Each round has its own task
// queue and its own workers (`node dist/workers/main.js`, as `causeway dev up` runs one), on one
// dev stack (in memory, with the tuned dynamic config). A build claims the worker that runs its
// first workflow task (prepareBuild), so builds spread over the workers polling the queue.
// Prints a table and writes its section of BENCHMARKS.md, with the load at every row.
//
//   npm run bench:throughput -- [--builds 500] [--workers 1,2,4] [--out BENCHMARKS.md]
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import readline from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { workerTaskQueue } from '../activities/build';
import { repoRoot, startStackOnFreePorts, stopStack, type StackInfo } from '../cli/dev/stack';
import { awaitBuild, startBuild } from '../common/build-client';
import { connectTemporalClient } from '../common/temporal-connection';
import { compilePlan } from '../schemas';
import { childPids, loadavg, machine, machineCpuMs, procCpuMs, runMain, writeSection } from './report';
import type { temporal } from '@temporalio/proto';

const MARKERS = { start: '<!-- bench:throughput:start -->', end: '<!-- bench:throughput:end -->' };
const PLAN = `name: throughput
plan:
- task: one
  config: {platform: linux, run: {path: "true"}}
`;
/** How long a worker may take from spawn to polling before the round gives up (a loaded machine takes seconds). */
const WORKER_START_MS = 120_000;
const WORKER_STOP_MS = 30_000;

interface WorkerProc {
  child: ChildProcess;
  started: Promise<void>;
  exited: Promise<void>;
  /** its CAUSEWAY_WORKER_NAME, which names the task queue of the steps of the builds it claims */
  name: string;
}

function startWorker(stack: StackInfo, home: string, taskQueue: string, name: string): WorkerProc {
  const child = spawn(process.execPath, [path.join(repoRoot(), 'dist', 'workers', 'main.js')], {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: stack.temporal.address,
      NATS_URL: stack.nats.url,
      CAUSEWAY_HOME: home,
      CAUSEWAY_WORKER_NAME: name,
      CAUSEWAY_TASK_QUEUE: taskQueue,
      CAUSEWAY_LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const started = new Promise<void>((resolve, reject) => {
    readline.createInterface({ input: child.stderr! }).on('line', (line) => {
      if (line.includes('"msg":"worker started"')) resolve();
    });
    void exited.then(() => reject(new Error(`worker ${name} exited before it started`)));
  });
  started.catch(() => undefined);
  return { child, started, exited, name };
}

async function stopWorker(w: WorkerProc): Promise<void> {
  if (w.child.exitCode !== null || w.child.signalCode !== null) return;
  w.child.kill('SIGTERM');
  if (await Promise.race([w.exited.then(() => false), delay(WORKER_STOP_MS).then(() => true)])) {
    w.child.kill('SIGKILL');
    await w.exited;
  }
}

/** CPU ms so far of each part of the stack a round runs on. */
interface Cpu {
  /** the round's worker processes with their process helpers (which reap the step processes) */
  workers: number;
  temporal: number;
  nats: number;
  /** this process: the client starting and awaiting every build */
  client: number;
  machineBusy: number;
  machineTotal: number;
}

function cpuNow(stack: StackInfo, round: WorkerProc[]): Cpu {
  const own = process.cpuUsage();
  const m = machineCpuMs();
  return {
    workers: round.reduce((sum, w) => sum + [w.child.pid!, ...childPids(w.child.pid!)].reduce((s, pid) => s + procCpuMs(pid), 0), 0),
    temporal: procCpuMs(stack.temporal.pid),
    nats: procCpuMs(stack.nats.pid),
    client: (own.user + own.system) / 1000,
    machineBusy: m.busy,
    machineTotal: m.total,
  };
}

/** Where a build waited, from its history (ms): for its first workflow task, each later one and its step's activity. */
interface Waits {
  firstTask: number;
  laterTasks: number[];
  stepQueue: number;
  total: number;
}

function waitsOf(events: temporal.api.history.v1.IHistoryEvent[]): Waits {
  const ms = (e: temporal.api.history.v1.IHistoryEvent | undefined) =>
    e?.eventTime ? Number(e.eventTime.seconds) * 1000 + (e.eventTime.nanos ?? 0) / 1e6 : NaN;
  const type = (e: temporal.api.history.v1.IHistoryEvent) => String(e.eventType);
  const is = (e: temporal.api.history.v1.IHistoryEvent, t: number, name: string) => type(e) === String(t) || type(e) === name;
  const scheduled = events.filter((e) => is(e, 5, 'EVENT_TYPE_WORKFLOW_TASK_SCHEDULED'));
  const started = events.filter((e) => is(e, 6, 'EVENT_TYPE_WORKFLOW_TASK_STARTED'));
  const taskWaits = started.map((s, i) => ms(s) - ms(scheduled[i]));
  const act = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'runTask');
  const actStarted = events.find(
    (e) => e.activityTaskStartedEventAttributes && Number(e.activityTaskStartedEventAttributes.scheduledEventId) === Number(act?.eventId),
  );
  return {
    firstTask: taskWaits[0],
    laterTasks: taskWaits.slice(1),
    stepQueue: ms(actStarted) - ms(act),
    total: ms(events.at(-1)) - ms(events[0]),
  };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

async function main(): Promise<void> {
  const arg = (name: string, fallback: string) => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : fallback;
  };
  const builds = Number(arg('builds', '500'));
  const counts = arg('workers', '1,2,4').split(',').map(Number);
  const out = arg('out', path.join(repoRoot(), 'BENCHMARKS.md'));
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-bench-throughput-'));
  const workers: WorkerProc[] = [];
  try {
    const stack = await startStackOnFreePorts({ home, persistent: false, startWorker: false, log: say });
    const about = machine(stack);
    const { client, connection } = await connectTemporalClient({ address: stack.temporal.address, home });
    const plan = compilePlan({ text: PLAN, file: 'throughput.yml' });
    const rows: {
      workers: number;
      wallMs: number;
      perWorker: number[];
      loadStart: string;
      loadEnd: string;
      cpu: Cpu;
      waits: Waits[];
    }[] = [];
    try {
      for (const count of counts) {
        const taskQueue = `throughput-${count}`;
        const round = Array.from({ length: count }, (_, i) => startWorker(stack, home, taskQueue, `tp${count}-${i}`));
        workers.push(...round);
        await Promise.race([
          Promise.all(round.map((w) => w.started)),
          delay(WORKER_START_MS).then(() => Promise.reject(new Error('workers did not start in time'))),
        ]);
        // One build first, so the round does not measure the workers' first workflow task (bundle load, connections).
        await awaitBuild(await startBuild(client, { plan, taskQueue }));
        const loadStart = loadavg();
        say(`${count} worker(s): ${builds} builds (load ${loadStart})`);
        const cpu0 = cpuNow(stack, round);
        const t0 = performance.now();
        const handles = await Promise.all(Array.from({ length: builds }, () => startBuild(client, { plan, taskQueue })));
        const outcomes = await Promise.all(handles.map((h) => awaitBuild(h)));
        const wallMs = performance.now() - t0;
        const cpu1 = cpuNow(stack, round);
        const cpu = Object.fromEntries(Object.entries(cpu1).map(([k, v]) => [k, v - cpu0[k as keyof Cpu]])) as unknown as Cpu;
        const failed = outcomes.filter((o) => o.status !== 'succeeded').length;
        if (failed) throw new Error(`${failed} of ${builds} builds did not succeed with ${count} worker(s)`);
        // Which worker each build claimed: the task queue of its runTask activity names it.
        const perWorker = round.map(() => 0);
        const waits: Waits[] = [];
        for (const h of handles.slice(0, Math.min(builds, 100))) {
          const events = (await client.workflow.getHandle(h.workflowId).fetchHistory()).events ?? [];
          waits.push(waitsOf(events));
          const queue = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'runTask')
            ?.activityTaskScheduledEventAttributes?.taskQueue?.name;
          const i = round.findIndex((w) => queue === workerTaskQueue(w.name));
          if (i >= 0) perWorker[i] += 1;
        }
        rows.push({ workers: count, wallMs, perWorker, loadStart, loadEnd: loadavg(), cpu, waits });
        say(
          `${count} worker(s): ${(builds / (wallMs / 1000)).toFixed(1)} builds/s, claims of the first 100: ${perWorker.join('/')}, ` +
            `CPU ms/build: workers ${(cpu.workers / builds).toFixed(1)}, Temporal ${(cpu.temporal / builds).toFixed(1)}, ` +
            `NATS ${(cpu.nats / builds).toFixed(1)}, client ${(cpu.client / builds).toFixed(1)}; machine busy ${((100 * cpu.machineBusy) / cpu.machineTotal).toFixed(0)}%`,
        );
        await Promise.all(round.map(stopWorker));
      }
    } finally {
      await connection.close();
    }
    const base = builds / (rows[0].wallMs / 1000);
    const header = [
      'workers',
      'builds',
      'wall s',
      'builds/s',
      '× 1 worker',
      'builds claimed per worker (first 100)',
      'load at start',
      'load at end',
    ];
    const table = [
      header,
      header.map(() => '---'),
      ...rows.map((r) => {
        const rate = builds / (r.wallMs / 1000);
        return [
          String(r.workers),
          String(builds),
          (r.wallMs / 1000).toFixed(1),
          rate.toFixed(1),
          `${(rate / base).toFixed(2)}×`,
          r.perWorker.join(' / '),
          r.loadStart,
          r.loadEnd,
        ];
      }),
    ]
      .map((r) => `| ${r.join(' | ')} |`)
      .join('\n');
    const cpuHeader = [
      'workers',
      'workers + helpers + steps',
      'Temporal server',
      'nats-server',
      'client',
      'all of the stack',
      'CPU-s the stack used per wall s',
      'machine busy (all processes)',
    ];
    const cpuTable = [
      cpuHeader,
      cpuHeader.map(() => '---'),
      ...rows.map((r) => {
        const c = r.cpu;
        const ours = c.workers + c.temporal + c.nats + c.client;
        return [
          String(r.workers),
          ...[c.workers, c.temporal, c.nats, c.client, ours].map((v) => (v / builds).toFixed(1)),
          (ours / r.wallMs).toFixed(2),
          `${((100 * c.machineBusy) / c.machineTotal).toFixed(0)}%`,
        ];
      }),
    ]
      .map((r) => `| ${r.join(' | ')} |`)
      .join('\n');
    const waitHeader = [
      'workers',
      'start → 1st workflow task started',
      'later workflow tasks: scheduled → started',
      'runTask scheduled → started',
      'build start → close',
    ];
    const waitTable = [
      waitHeader,
      waitHeader.map(() => '---'),
      ...rows.map((r) => [
        String(r.workers),
        ...[
          r.waits.map((w) => w.firstTask),
          r.waits.flatMap((w) => w.laterTasks),
          r.waits.map((w) => w.stepQueue),
          r.waits.map((w) => w.total),
        ].map((xs) => mean(xs).toFixed(0)),
      ]),
    ]
      .map((r) => `| ${r.join(' | ')} |`)
      .join('\n');
    const text = `${MARKERS.start}
## Throughput with 1, 2 and 4 workers (\`npm run bench:throughput\`)

${builds} one-step builds (\`run: {path: "true"}\`) started at once from one client, to the last result, per number of
worker processes (\`node dist/workers/main.js\`, each polling the round's task queue; a build claims the worker that
runs its first workflow task and runs its steps there). One dev stack, in memory, with the tuned dynamic config;
one warm-up build per round. Goal (issue 16): adding a worker adds throughput.

Machine: ${about.cpus} CPUs, ${about.memory} memory, ${about.os}; Node ${about.node}; Temporal CLI ${about.temporal};
run ${about.date}. The workers, the server and the client share the machine's CPUs: on ${about.cpus.split(' ')[0]} CPUs more
worker processes add pollers and event loops, not cores.

${table}

CPU ms per build over the round (from \`/proc/<pid>/stat\` of each process; the machine's from \`/proc/stat\`):

${cpuTable}

Where the first ${Math.min(builds, 100)} builds of each round waited (means in ms, from their histories):

${waitTable}

Rerun: \`npm run bench:throughput\` (\`-- --builds 50\` for a quick look).
${MARKERS.end}`;
    console.log(`${table}\n\n${cpuTable}\n\n${waitTable}`);
    writeSection(out, MARKERS, text);
  } finally {
    await Promise.all(workers.map(stopWorker));
    await stopStack(home);
    fs.rmSync(home, { recursive: true, force: true });
  }
}

runMain(main);
