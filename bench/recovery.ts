// Crash recovery: how long a build stalls when its worker dies, and where that time goes.
// One stack, one plan (a short task, a long task `sleep N`, a short task), built R times
// undisturbed and R times with the worker process killed (SIGKILL) K seconds into the long
// step and started again at once, interleaved, on the same worker name and task queue.
//
//   npm run bench:recovery -- [--repeat 3] [--sleep 6] [--kill-at 2] [--out BENCHMARKS.md]
//
// The worker runs as its own process (`node dist/workers/main.js`), as `causeway dev up` and
// the chaos test run it; the timings come from the worker's own log lines (pino, epoch ms),
// from files the long step writes when it starts and ends, from polling the build's pending
// activity (describe) while the worker is away, and from the build's workflow history.
// Everything is on this host, so the worker's, the server's and this process' clocks agree.
//
// Self-contained: it starts its own dev stack on free ports of 127.0.0.1 and stops it, and
// every worker it started, when done, on error and on Ctrl-C.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { repoRoot, startStackOnFreePorts, stopStack, type StackInfo } from '../cli/dev/stack';
import { awaitBuild, startBuild } from '../common/build-client';
import { compilePlan } from '../schemas';
import { loadavg, machine, writeSection } from './report';
import { causewayDataConverter, loadCodecKeys } from '../common/codec';

const MARK_START = '<!-- bench:recovery:start -->';
const MARK_END = '<!-- bench:recovery:end -->';
const WORKER_SCRIPT = path.join(repoRoot(__dirname), 'dist', 'workers', 'main.js');
const WORKER_NAME = 'bench-recovery';
const HEARTBEAT_TIMEOUT_S = 5; // workflows/build.ts, step activities
const RETRY_INITIAL_MS = 200; // workflows/build.ts, step activities
const TIMEOUT_TYPES: Record<number, string> = { 1: 'START_TO_CLOSE', 2: 'SCHEDULE_TO_START', 3: 'SCHEDULE_TO_CLOSE', 4: 'HEARTBEAT' };

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
type Timestamp = { seconds?: unknown; nanos?: number | null } | null | undefined;

interface Options {
  repeat: number;
  sleep: number;
  killAt: number;
  out: string;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { repeat: 3, sleep: 6, killAt: 2, out: path.join(repoRoot(__dirname), 'BENCHMARKS.md') };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [flag, inline] = arg.split('=', 2);
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    const positive = (v: string, integer: boolean) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n)))
        throw new Error(`${flag} must be a positive ${integer ? 'integer' : 'number'}, got ${v}`);
      return n;
    };
    if (flag === '--repeat') opts.repeat = positive(value(), true);
    else if (flag === '--sleep') opts.sleep = positive(value(), false);
    else if (flag === '--kill-at') opts.killAt = positive(value(), false);
    else if (flag === '--out') opts.out = path.resolve(value());
    else if (flag === '--help' || flag === '-h') {
      console.log('usage: node dist/bench/recovery.js [--repeat R=3] [--sleep SECONDS=6] [--kill-at SECONDS=2] [--out FILE=BENCHMARKS.md]');
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}`);
  }
  if (opts.killAt >= opts.sleep) throw new Error('--kill-at must be less than --sleep: the worker is killed while the long step runs');
  return opts;
}

const median = (xs: number[]): number => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : '–');
const tsMs = (t: Timestamp): number => (t ? Number(t.seconds ?? 0) * 1000 + (t.nanos ?? 0) / 1e6 : NaN);
const eventMs = (e: HistoryEvent): number => tsMs(e.eventTime as Timestamp);

// ---------------------------------------------------------------- the worker process

interface WorkerProc {
  child: ChildProcess;
  spawnedAt: number;
  /** epoch ms of pino's 'worker started' (both pollers running) */
  started: Promise<number>;
  /** pino log records, in order */
  records: Array<{ time: number; msg: string }>;
  exited: Promise<void>;
}

function startWorker(stack: StackInfo, home: string, taskQueue: string, logFile: string): WorkerProc {
  const spawnedAt = Date.now();
  const child = spawn(process.execPath, [WORKER_SCRIPT], {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: stack.temporal.address,
      NATS_URL: stack.nats.url,
      CAUSEWAY_HOME: home,
      CAUSEWAY_WORKER_NAME: WORKER_NAME,
      CAUSEWAY_TASK_QUEUE: taskQueue,
      CAUSEWAY_LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const records: WorkerProc['records'] = [];
  const log = fs.createWriteStream(logFile, { flags: 'a' });
  log.write(`--- worker spawned at ${new Date(spawnedAt).toISOString()} (pid ${child.pid})\n`);
  let onStarted: (t: number) => void = () => undefined;
  let onFailed: (e: Error) => void = () => undefined;
  const started = new Promise<number>((resolve, reject) => {
    onStarted = resolve;
    onFailed = reject;
  });
  started.catch(() => undefined);
  const lines = readline.createInterface({ input: child.stderr! });
  lines.on('line', (line) => {
    log.write(`${line}\n`);
    let record: { time?: number; msg?: string } | undefined;
    try {
      record = JSON.parse(line) as { time?: number; msg?: string };
    } catch {
      return; // the SDK's own (non-JSON) log lines
    }
    if (typeof record?.time !== 'number' || typeof record.msg !== 'string') return;
    records.push({ time: record.time, msg: record.msg });
    if (record.msg === 'worker started') onStarted(record.time);
  });
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      log.end(`--- worker exited (${signal ?? code})\n`);
      onFailed(new Error(`worker exited (${signal ?? code}) before it started; see ${logFile}`));
      resolve();
    }),
  );
  return { child, spawnedAt, started, records, exited };
}

async function stopWorker(w: WorkerProc | undefined): Promise<void> {
  if (!w || w.child.exitCode !== null || w.child.signalCode !== null) return;
  w.child.kill('SIGTERM');
  const timedOut = await Promise.race([w.exited.then(() => false), delay(15_000).then(() => true)]);
  if (timedOut) {
    w.child.kill('SIGKILL');
    await w.exited;
  }
}

// ---------------------------------------------------------------- one build

interface Run {
  kind: 'undisturbed' | 'disturbed';
  buildId: string;
  /** client-side wall time, start of the build to its result */
  wallMs: number;
  t0: number;
  /** the long step's process: started / ended (epoch ms, written by the step itself) */
  stepStart: number;
  stepEnd: number;
  /** the long step's runTask: history event times */
  longScheduled: number;
  longStartedAttempt: number;
  longStartedEvent: number;
  longCompleted: number;
  wfStarted: number;
  wfCompleted: number;
  /** after the long step: WorkflowTaskScheduled → WorkflowTaskStarted of the first workflow task (the new worker's first, when disturbed) */
  wftQueueAfterLong: number;
  wftRunAfterLong: number;
  /** that workflow task timed out first (sticky queue of a dead worker): after how long, and which timeout */
  wftTimeout: number;
  wftTimeoutType?: string;
  // disturbed only
  seenRetry?: number;
  kill?: number;
  restart?: number;
  workerStarted?: number;
  lastHeartbeat?: number;
  timedOut?: number;
  retryAt?: number;
  reattachLog?: number;
  timeoutFailure?: string;
}

function planText(counts: string, marks: string, sleep: number, marker: string): string {
  const task = (name: string, script: string) => ({
    task: name,
    config: { platform: 'linux', run: { path: 'sh', args: ['-c', `${script} # ${marker}`] } },
  });
  const plan = [
    task('before', `echo before >> ${counts}`),
    task('long', `date +%s%3N > ${marks}/start; echo long >> ${counts}; sleep ${sleep}; date +%s%3N > ${marks}/end`),
    task('after', `echo after >> ${counts}`),
  ];
  return JSON.stringify({ name: 'bench-recovery', plan });
}

async function readMark(file: string, until: number): Promise<number> {
  for (;;) {
    const text = await fs.promises.readFile(file, 'utf8').catch(() => '');
    if (text.endsWith('\n')) return Number(text.trim());
    if (Date.now() > until) throw new Error(`${file} did not appear`);
    await delay(10);
  }
}

function analyseHistory(events: HistoryEvent[]) {
  const runTasks = events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'runTask');
  if (runTasks.length !== 3) throw new Error(`expected 3 runTask activities, found ${runTasks.length}`);
  const long = runTasks[1];
  const id = String(long.eventId);
  const started = events.find((e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId ?? '') === id);
  const completedIndex = events.findIndex((e) => String(e.activityTaskCompletedEventAttributes?.scheduledEventId ?? '') === id);
  if (!started || completedIndex < 0) throw new Error('the long step did not complete');
  const completed = events[completedIndex];
  const after = events.slice(completedIndex + 1);
  const wftScheduled = after.find((e) => e.workflowTaskScheduledEventAttributes);
  const wftTimedOut = after.find((e) => e.workflowTaskTimedOutEventAttributes);
  const wftStarted = after.find((e) => e.workflowTaskStartedEventAttributes);
  const wftCompleted = after.find((e) => e.workflowTaskCompletedEventAttributes);
  const wfStarted = events.find((e) => e.workflowExecutionStartedEventAttributes);
  const wfCompleted = events.find((e) => e.workflowExecutionCompletedEventAttributes);
  const failure = started.activityTaskStartedEventAttributes?.lastFailure;
  return {
    longScheduled: eventMs(long),
    longStartedAttempt: started.activityTaskStartedEventAttributes?.attempt ?? 1,
    longStartedEvent: eventMs(started),
    longCompleted: eventMs(completed),
    wfStarted: wfStarted ? eventMs(wfStarted) : NaN,
    wfCompleted: wfCompleted ? eventMs(wfCompleted) : NaN,
    wftQueueAfterLong: wftScheduled && wftStarted ? eventMs(wftStarted) - eventMs(wftScheduled) : NaN,
    wftRunAfterLong: wftStarted && wftCompleted ? eventMs(wftCompleted) - eventMs(wftStarted) : NaN,
    wftTimeout: wftTimedOut && wftScheduled ? eventMs(wftTimedOut) - eventMs(wftScheduled) : 0,
    wftTimeoutType: wftTimedOut
      ? (TIMEOUT_TYPES[Number(wftTimedOut.workflowTaskTimedOutEventAttributes?.timeoutType)] ?? 'unknown')
      : undefined,
    timeoutFailure: failure
      ? `${failure.timeoutFailureInfo ? `${TIMEOUT_TYPES[Number(failure.timeoutFailureInfo.timeoutType)] ?? 'unknown'} timeout:` : ''} ${failure.message ?? ''}`.trim()
      : undefined,
  };
}

/**
 * While the worker is away: the server's view of the long step's activity. The first
 * snapshot with attempt ≥ 2 says when attempt 1 was declared dead (lastAttemptCompleteTime)
 * and when attempt 2 may be handed out (nextAttemptScheduleTime); the last snapshot of
 * attempt 1 has its last heartbeat.
 */
async function watchPending(handle: WorkflowHandle, until: () => boolean) {
  let lastHeartbeat = NaN;
  let timedOut = NaN;
  let retryAt = NaN;
  let seenRetry = NaN;
  while (!until()) {
    const desc = await handle.describe().catch(() => undefined);
    const pending = desc?.raw.pendingActivities?.find((p) => p.activityType?.name === 'runTask');
    if (pending && process.env.BENCH_RECOVERY_DEBUG) console.error(Date.now(), JSON.stringify(pending));
    if (pending) {
      if ((pending.attempt ?? 1) <= 1) lastHeartbeat = tsMs(pending.lastHeartbeatTime as Timestamp);
      else {
        // This server (1.29 dev) fills neither lastAttemptCompleteTime nor nextAttemptScheduleTime:
        // attempt 2's scheduledTime is when it is due, the timeout one backoff (initialInterval) before.
        seenRetry = Date.now();
        retryAt = tsMs(pending.scheduledTime as Timestamp);
        timedOut = retryAt - RETRY_INITIAL_MS;
        break;
      }
    }
    await delay(50);
  }
  return { lastHeartbeat, timedOut, retryAt, seenRetry };
}

interface Ctx {
  client: Client;
  stack: StackInfo;
  home: string;
  taskQueue: string;
  workerLog: string;
  marker: string;
  opts: Options;
  worker: WorkerProc;
  progress: (m: string) => void;
}

async function runBuild(ctx: Ctx, kind: Run['kind']): Promise<Run> {
  const dir = fs.mkdtempSync(path.join(ctx.home, 'bench-run-'));
  const counts = path.join(dir, 'counts');
  const plan = compilePlan({ text: planText(counts, dir, ctx.opts.sleep, ctx.marker), file: 'recovery.yml' });
  const t0 = Date.now();
  const handle = await startBuild(ctx.client, { plan, taskQueue: ctx.taskQueue });
  const outcomeP = awaitBuild(handle);
  let done = false;
  void outcomeP.finally(() => (done = true));

  const disturbed: Partial<Run> = {};
  if (kind === 'disturbed') {
    const stepStart = await readMark(path.join(dir, 'start'), Date.now() + 120_000);
    await delay(Math.max(0, stepStart + ctx.opts.killAt * 1000 - Date.now()));
    const old = ctx.worker;
    disturbed.kill = Date.now();
    old.child.kill('SIGKILL');
    ctx.worker = startWorker(ctx.stack, ctx.home, ctx.taskQueue, ctx.workerLog);
    disturbed.restart = ctx.worker.spawnedAt;
    const pending = await watchPending(handle, () => done);
    Object.assign(disturbed, pending);
    disturbed.workerStarted = await ctx.worker.started;
    await old.exited;
  }

  const outcome = await outcomeP;
  const wallMs = Date.now() - t0;
  if (outcome.status !== 'succeeded') throw new Error(`build ${handle.workflowId} ${outcome.status}: ${outcome.message ?? ''}`);
  const lines = fs.readFileSync(counts, 'utf8').trim().split('\n');
  if (lines.join(',') !== 'before,long,after')
    throw new Error(`build ${handle.workflowId}: each step must run once, the steps ran: ${lines.join(', ')}`);
  const stepStart = await readMark(path.join(dir, 'start'), Date.now());
  const stepEnd = await readMark(path.join(dir, 'end'), Date.now());
  const history = analyseHistory((await handle.fetchHistory()).events ?? []);
  if (kind === 'disturbed') {
    disturbed.reattachLog = ctx.worker.records.find((r) => r.msg === 're-attached to a running step' && r.time >= disturbed.restart!)?.time;
    if (history.longStartedAttempt < 2) throw new Error(`build ${handle.workflowId}: the long step was not retried after the kill`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return { kind, buildId: handle.workflowId, wallMs, t0, stepStart, stepEnd, ...history, ...disturbed };
}

// ---------------------------------------------------------------- the machine

// ---------------------------------------------------------------- report

function markdownTable(header: string[], rows: string[][], right = true): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i > 0 && right ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i > 0 && right ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

interface Report {
  opts: Options;
  info: Record<string, string>;
  loadStart: string;
  loadEnd: string;
  undisturbed: Run[];
  disturbed: Run[];
  firstStartMs: number;
}

function build(report: Report) {
  const { undisturbed: u, disturbed: d, opts } = report;
  const m = (runs: Run[], f: (r: Run) => number) => median(runs.map(f));
  const wallU = m(u, (r) => r.wallMs);
  const wallD = m(d, (r) => r.wallMs);
  const killAtMs = opts.killAt * 1000;
  const x = {
    wallU,
    wallD,
    extra: wallD - wallU,
    extraPaired: median(d.map((r, i) => r.wallMs - (u[i]?.wallMs ?? NaN))),
    restartToPolling: m(d, (r) => r.workerStarted! - r.restart!),
    restartToReattachLog: m(d, (r) => (r.reattachLog ?? NaN) - r.restart!),
    restartToStartedEvent: m(d, (r) => r.longStartedEvent - r.restart!),
    killToRestart: m(d, (r) => r.restart! - r.kill!),
    detection: m(d, (r) => r.timedOut! - r.kill!),
    heartbeatToTimeout: m(d, (r) => r.timedOut! - r.lastHeartbeat!),
    backoff: m(d, (r) => r.retryAt! - r.timedOut!),
    retryToStarted: m(d, (r) => r.longStartedEvent - Math.max(r.retryAt!, r.workerStarted!)),
    waitedForWorker: m(d, (r) => Math.max(0, r.workerStarted! - r.retryAt!)),
    killToStarted: m(d, (r) => r.longStartedEvent - r.kill!),
    // when the step itself ended, relative to the kill, and what of the recovery it hid
    killToStepEnd: m(d, (r) => r.stepEnd - r.kill!),
    stepEndToStarted: m(d, (r) => r.longStartedEvent - r.stepEnd),
    startedToCompleted: m(d, (r) => r.longCompleted - r.longStartedEvent),
    // the long step's activity, from its process start to its result, both builds
    stepToResultU: m(u, (r) => r.longCompleted - r.stepStart),
    stepToResultD: m(d, (r) => r.longCompleted - r.stepStart),
    stepEndToResultU: m(u, (r) => r.longCompleted - r.stepEnd),
    stepEndToResultD: m(d, (r) => r.longCompleted - r.stepEnd),
    afterU: m(u, (r) => r.wfCompleted - r.longCompleted),
    afterD: m(d, (r) => r.wfCompleted - r.longCompleted),
    wftQueueU: m(u, (r) => r.wftQueueAfterLong),
    wftQueueD: m(d, (r) => r.wftQueueAfterLong),
    wftRunU: m(u, (r) => r.wftRunAfterLong),
    wftTimeoutU: m(u, (r) => r.wftTimeout),
    wftTimeoutD: m(d, (r) => r.wftTimeout),
    wftTimeoutTypes: [...new Set(d.map((r) => r.wftTimeoutType).filter(Boolean))].join(', ') || 'none',
    wftTimedOutRuns: d.filter((r) => r.wftTimeoutType).length,
    seenRetryLag: m(d, (r) => r.seenRetry! - r.timedOut!),
    wftRunD: m(d, (r) => r.wftRunAfterLong),
    beforeU: m(u, (r) => r.stepStart - r.t0),
    beforeD: m(d, (r) => r.stepStart - r.t0),
    stepLenU: m(u, (r) => r.stepEnd - r.stepStart),
    stepLenD: m(d, (r) => r.stepEnd - r.stepStart),
    killOffset: m(d, (r) => r.kill! - r.stepStart),
    startedLogGap: m(d, (r) => (r.reattachLog ?? NaN) - r.longStartedEvent),
    killAtMs,
  };
  return x;
}

function tables(report: Report): { main: string; breakdown: string; phases: string; perRun: string; x: ReturnType<typeof build> } {
  const x = build(report);
  const { opts } = report;
  const main = markdownTable(
    [
      'build (median of ' + opts.repeat + ')',
      'wall ms',
      'extra over undisturbed ms',
      'restart → worker polling ms',
      'restart → step re-attached ms',
    ],
    [
      ['undisturbed', f0(x.wallU), '–', '–', '–'],
      [
        `worker SIGKILLed ${opts.killAt} s into the ${opts.sleep} s step, restarted at once`,
        f0(x.wallD),
        `${f0(x.extra)} (paired ${f0(x.extraPaired)})`,
        f0(x.restartToPolling),
        `${f0(x.restartToStartedEvent)} (log ${f0(x.restartToReattachLog)})`,
      ],
    ],
  );
  const breakdown = markdownTable(
    ['disturbed build, from the kill (median ms)', 'ms', 'from the kill ms'],
    [
      ['kill → new worker process spawned', f0(x.killToRestart), f0(x.killToRestart)],
      [
        'new worker: spawn → polling (Node start, NATS + Temporal connections, workflow bundling), overlaps the detection',
        f0(x.restartToPolling),
        f0(x.killToRestart + x.restartToPolling),
      ],
      [
        `heartbeat-timeout detection: kill → attempt 1 timed out (last heartbeat → timed out: ${f0(x.heartbeatToTimeout)})`,
        f0(x.detection),
        f0(x.detection),
      ],
      ['retry backoff: timed out → attempt 2 due', f0(x.backoff), f0(x.detection + x.backoff)],
      [`waiting for the worker after attempt 2 was due`, f0(x.waitedForWorker), '–'],
      [
        'attempt 2 due (and worker polling) → attempt 2 started (server retry timer, matching, dispatch)',
        f0(x.retryToStarted),
        f0(x.killToStarted),
      ],
      [
        'attempt 2 started → step result recorded (re-attach, exit status, log drain, events)',
        f0(x.startedToCompleted),
        f0(x.killToStarted + x.startedToCompleted),
      ],
      [`(the step itself: kill → its process ended, running on detached)`, f0(x.killToStepEnd), f0(x.killToStepEnd)],
      [
        `next workflow task: on the killed worker's sticky queue until its schedule-to-start timeout, then replayed on the new worker`,
        f0(x.wftQueueD + x.wftRunD),
        '–',
      ],
    ],
  );
  const phases = markdownTable(
    ['phase (median ms)', 'undisturbed', 'disturbed', 'difference'],
    [
      ['build start → long step process started', f0(x.beforeU), f0(x.beforeD), f0(x.beforeD - x.beforeU)],
      ['long step process: start → end (its own run time)', f0(x.stepLenU), f0(x.stepLenD), f0(x.stepLenD - x.stepLenU)],
      [
        'long step process ended → its result in history',
        f0(x.stepEndToResultU),
        f0(x.stepEndToResultD),
        f0(x.stepEndToResultD - x.stepEndToResultU),
      ],
      ['long step result → build completed (after step, finishBuild)', f0(x.afterU), f0(x.afterD), f0(x.afterD - x.afterU)],
      ['  of which the first workflow task after it: scheduled → started', f0(x.wftQueueU), f0(x.wftQueueD), f0(x.wftQueueD - x.wftQueueU)],
      [
        `    of which it waited on the killed worker's sticky queue until it timed out (${x.wftTimeoutTypes}, ${x.wftTimedOutRuns}/${report.disturbed.length} runs)`,
        f0(x.wftTimeoutU),
        f0(x.wftTimeoutD),
        f0(x.wftTimeoutD - x.wftTimeoutU),
      ],
      ['  of which that workflow task: run (the new worker replays the history)', f0(x.wftRunU), f0(x.wftRunD), f0(x.wftRunD - x.wftRunU)],
      ['client wall time', f0(x.wallU), f0(x.wallD), f0(x.wallD - x.wallU)],
    ],
  );
  const rows: string[][] = [];
  for (const r of [...report.undisturbed, ...report.disturbed]) {
    rows.push([
      r.kind,
      f0(r.wallMs),
      f0(r.longCompleted - r.stepEnd),
      r.kind === 'disturbed' ? f0(r.workerStarted! - r.restart!) : '–',
      r.kind === 'disturbed' ? f0(r.timedOut! - r.kill!) : '–',
      r.kind === 'disturbed' ? f0(r.retryAt! - r.timedOut!) : '–',
      r.kind === 'disturbed' ? f0(r.longStartedEvent - r.restart!) : '–',
      r.kind === 'disturbed' ? f0((r.reattachLog ?? NaN) - r.restart!) : '–',
      String(r.longStartedAttempt),
      r.wftTimeoutType ? `${f0(r.wftTimeout)} (${r.wftTimeoutType})` : '–',
    ]);
  }
  const perRun = markdownTable(
    [
      'run',
      'wall ms',
      'step end → result ms',
      'restart → polling ms',
      'kill → timed out ms',
      'backoff ms',
      'restart → attempt started ms',
      'restart → re-attached log ms',
      'attempt',
      'next WFT timed out after ms',
    ],
    rows,
  );
  return { main, breakdown, phases, perRun, x };
}

function section(report: Report): string {
  const { opts, info } = report;
  const t = tables(report);
  const x = t.x;
  return [
    MARK_START,
    '## Crash recovery: a worker killed mid-step',
    '',
    `A plan of three tasks (\`echo\`, \`sleep ${opts.sleep}\`, \`echo\`) on one local worker running as its own process`,
    `(\`node dist/workers/main.js\`, as \`causeway dev up\` runs it). Each repetition builds it once undisturbed and once`,
    `with the worker killed (SIGKILL) ${opts.killAt} s into the long step and a new worker with the same name started at once;`,
    `interleaved, median of ${opts.repeat} each, one dev stack (persistent Temporal, NATS), after one warm-up build.`,
    'Every build succeeded and every step ran exactly once (the steps append to a file): the long step was',
    "re-attached, not re-run. Times come from the worker's log (pino, epoch ms), files the long step writes when it",
    "starts and ends, the server's view of the pending activity polled every 50 ms while the worker is away, and the",
    "build's history; all on one host. This server fills neither `lastAttemptCompleteTime` nor `nextAttemptScheduleTime`:",
    "the retry is due at attempt 2's `scheduledTime`, and the timeout is taken as one backoff (the 200 ms",
    '`initialInterval` of step activities) before it, so the backoff row is 200 ms by construction.',
    '',
    `Machine: ${info.cpus} CPUs, ${info.memory} memory, ${info.os}; Node ${info.node}; Temporal CLI ${info.temporal}`,
    `(dev server, persistent); run ${info.date}, load average ${report.loadStart} at start, ${report.loadEnd} at the end`,
    '(other sessions were running tests on the same 2 CPUs: absolute numbers are noisy, the shape is not).',
    '',
    t.main,
    '',
    '"Restart → step re-attached" is the retried attempt\'s ActivityTaskStarted in the history (log: the worker\'s',
    '"re-attached to a running step" line). The first worker of the run took ' + f0(report.firstStartMs) + ' ms from spawn to polling.',
    '',
    '### Where the time goes',
    '',
    t.breakdown,
    '',
    t.phases,
    '',
    `**What dominates**: of the ${f0(x.extra)} ms the disturbed build takes longer, ${f0(x.afterD - x.afterU)} ms come after the long step:`,
    `the workflow task that follows its result is put on the killed worker's sticky queue and only handed to the`,
    `new worker when it times out there (${x.wftTimeoutTypes} after ${f0(x.wftTimeoutD)} ms: the workers'`,
    '`stickyQueueScheduleToStartTimeout` of 2 s, workers/pollers.ts; the SDK default is 10 s), and the new worker, which has no cached workflow, replays the history',
    `(${f0(x.wftRunD)} ms against ${f0(x.wftRunU)} ms). ${f0(x.stepEndToResultD - x.stepEndToResultU)} ms are the step's result arriving late: the step process ran on,`,
    `detached, and ended ${f0(x.killToStepEnd)} ms after the kill, but nobody watched it until the retried activity re-attached`,
    `${f0(x.killToStarted)} ms after the kill: heartbeat-timeout detection ${f0(x.detection)} ms (${HEARTBEAT_TIMEOUT_S} s after the last heartbeat, sent`,
    `every second), retry backoff ${f0(x.backoff)} ms, due → started ${f0(x.retryToStarted)} ms although the new worker was already polling. The worker restart itself (${f0(x.restartToPolling)} ms from spawn`,
    `to polling: Node start, NATS and Temporal connections, bundling the workflow code) is hidden under the detection when the worker is restarted at once.`,
    `A step with more than ~${((x.killToStarted + 500) / 1000).toFixed(0)} s left when its worker dies loses nothing to the heartbeat timeout;`,
    `the sticky-queue wait was paid in ${x.wftTimedOutRuns === report.disturbed.length ? 'every disturbed run' : `${x.wftTimedOutRuns} of ${report.disturbed.length} disturbed runs`} here (the next workflow task came within ~10 s of the`,
    "kill, before the server stopped routing to the killed worker's sticky queue).",
    '',
    '**What would shrink it**: (1) the restarted worker resetting the sticky queue (`ResetStickyTaskQueue`) of the builds',
    'whose step directories it re-adopts would remove the remaining 2 s wait (the workers already cut it from the',
    "SDK's 10 s; going lower makes a live but slow worker pay a replay more often); (2) keeping the activity's task",
    'token in the step directory, so the restarted worker re-attaches at start-up and heartbeats and completes the',
    'original attempt itself (async completion), would replace detection + backoff + dispatch with its own start-up;',
    'failing that, a shorter heartbeat timeout on step activities (detection is the timeout minus up to one heartbeat interval);',
    "(3) a prebuilt workflow bundle would cut most of the worker's start-up, which matters once (2) puts it on the path.",
    '',
    '<details><summary>Every run</summary>',
    '',
    t.perRun,
    '',
    '</details>',
    '',
    '### Reproduce',
    '',
    '```',
    'npm run bench:recovery                                  # sleep 6, kill 2 s in, median of 3',
    'npm run bench:recovery -- --repeat 5 --sleep 12 --kill-at 2',
    '```',
    '',
    'It provisions the Temporal CLI and nats-server (cached under `~/.cache/causeway`), starts its own stack on',
    'free ports of 127.0.0.1, and stops it and every worker it started when done (also on error and Ctrl-C).',
    MARK_END,
  ].join('\n');
}

// ---------------------------------------------------------------- main

function stepLeftovers(marker: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', marker], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const progress = (message: string) => console.error(`[bench] ${message}`);
  if (!fs.existsSync(WORKER_SCRIPT))
    throw new Error(`${WORKER_SCRIPT} does not exist; run \`npm run build\` first (npm run bench:recovery does)`);

  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-bench-recovery-'));
  const marker = `bench-recovery-${randomUUID()}`;
  let stackStarted = false;
  let connection: Connection | undefined;
  let ctx: Ctx | undefined;
  const workerLog = path.join(home, 'worker.log');

  const cleanup = async () => {
    await stopWorker(ctx?.worker).catch(() => undefined);
    // Step processes are detached from the worker: stop this run's own, by pid, if any is left.
    for (const pid of stepLeftovers(marker)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await connection?.close().catch(() => undefined);
    if (stackStarted) await stopStack(home).catch((err) => progress(`stopStack: ${(err as Error).message}`));
    stackStarted = false;
    fs.rmSync(home, { recursive: true, force: true });
  };
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    progress(`${signal}: stopping the workers and the stack`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const stack = await startStackOnFreePorts({ home, persistent: true, startWorker: false, log: progress });
    stackStarted = true;
    const info = machine(stack);
    const loadStart = loadavg();
    connection = await Connection.connect({ address: stack.temporal.address });
    const client = new Client({ connection, dataConverter: causewayDataConverter(loadCodecKeys({ home })) });
    const taskQueue = `bench-recovery-${randomUUID().slice(0, 8)}`;

    progress('starting the worker process');
    const worker = startWorker(stack, home, taskQueue, workerLog);
    const firstStartMs = (await worker.started) - worker.spawnedAt;
    ctx = { client, stack, home, taskQueue, workerLog, marker, opts, worker, progress };

    progress('warm-up build');
    await runBuild(ctx, 'undisturbed');
    const undisturbed: Run[] = [];
    const disturbed: Run[] = [];
    for (let i = 0; i < opts.repeat; i++) {
      const u = await runBuild(ctx, 'undisturbed');
      undisturbed.push(u);
      progress(`repeat ${i + 1}/${opts.repeat}: undisturbed ${u.wallMs} ms`);
      const d = await runBuild(ctx, 'disturbed');
      disturbed.push(d);
      progress(
        `repeat ${i + 1}/${opts.repeat}: disturbed ${d.wallMs} ms (restart → polling ${d.workerStarted! - d.restart!} ms, kill → timed out ${f0(d.timedOut! - d.kill!)} ms, ` +
          `restart → attempt ${d.longStartedAttempt} started ${f0(d.longStartedEvent - d.restart!)} ms; ${d.timeoutFailure ?? ''})`,
      );
    }
    const report: Report = { opts, info, loadStart, loadEnd: loadavg(), undisturbed, disturbed, firstStartMs };
    const t = tables(report);
    console.log(`\nload average: ${report.loadStart} at start, ${report.loadEnd} at the end\n`);
    console.log(t.main);
    console.log('');
    console.log(t.breakdown);
    console.log('');
    console.log(t.phases);
    console.log('');
    console.log(t.perRun);
    writeSection(opts.out, { start: MARK_START, end: MARK_END }, section(report));
    progress(`wrote ${opts.out}`);
  } finally {
    if (!interrupted) await cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`bench:recovery: ${(err as Error).stack ?? err}`);
    process.exit(1);
  },
);
