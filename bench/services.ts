// Time from submitting a build to its first step command starting, for a plan with one
// PostgreSQL service (pg_isready as startup probe), split into: process start, server
// startup (initdb + postgres until it accepts connections), detection delay, step start.
// In the same run, the same PostgreSQL is started by hand with a shell loop polling
// pg_isready at the same period; the difference of the parts that are not the server's
// own startup is what Causeway adds. Prints a table and writes its section of BENCHMARKS.md.
//
//   npm run bench:services -- [--repeat 5] [--period 0.01] [--out BENCHMARKS.md]
//
// Needs root (PostgreSQL runs as the `postgres` user, through setpriv in Causeway and runuser by hand)
// and Debian's PostgreSQL. Self-contained: starts its own in-memory Temporal and NATS on
// free ports and one in-process local worker, and stops them at the end.
import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import pino from 'pino';
import { freePort, repoRoot, startStackOnFreePorts, stopStack } from '../cli/dev/stack';
import type { NatsConnection } from '@nats-io/transport-node';
import { awaitBuild, startBuild } from '../common/build-client';
import { collectServiceLogs } from '../common/build-log';
import { connectNats } from '../common/nats';
import { compilePlan } from '../schemas';
import { startLocalWorker, type RunningWorker } from '../workers/local';
import { runMain, writeSection } from './report';
import { causewayDataConverter, loadCodecKeys } from '../common/codec';
import { bundleBuildWorkflows } from '../workers/bundle';

const MARK_START = '<!-- bench:services:start -->';
const MARK_END = '<!-- bench:services:end -->';
const TARGET_MS = 100;

interface Options {
  repeat: number;
  period: number;
  out: string;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { repeat: 5, period: 0.01, out: path.join(repoRoot(__dirname), 'BENCHMARKS.md') };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === '--repeat') opts.repeat = Math.max(1, Number.parseInt(value(), 10));
    else if (flag === '--period') opts.period = Number(value());
    else if (flag === '--out') opts.out = path.resolve(value());
    else throw new Error(`unknown flag ${flag}; flags: --repeat N, --period SECONDS, --out FILE`);
  }
  if (!(opts.period > 0)) throw new Error('--period must be a number of seconds > 0');
  return opts;
}

const PG_BIN = execFileSync('sh', ['-c', 'ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1'], { encoding: 'utf8' }).trim();

/** One run's times, ms. `processStart` counts from submission (Causeway) or from the script's start (by hand). */
interface Parts {
  processStart: number;
  serverStartup: number;
  detection: number;
  stepStart: number;
  total: number;
  /** Causeway only: where process start and step start go, from the build's history */
  where?: Where;
}

interface Where {
  /** submit → startService started: starting the workflow, one workflow task (prepareBuild runs in it as a local activity), dispatch */
  toStartService: number;
  /** startService started → service command runs: address, the service's namespace and veth on the build's bridge (the hub's too: one service per build here) and directories (made at once), process wrapper, nsenter, hosts view, setpriv */
  startService: number;
  /** probeService completed → runTask started: a workflow task and a dispatch */
  toRunTask: number;
  /** runTask started → step command runs: step directory, process wrapper, nsenter, hosts view */
  runTask: number;
}

/** The shell that starts PostgreSQL, writing its start time (ns) to `mark`; postgres logs with ms timestamps. */
function serverScript(mark: string, hostVar: string, port: number): string {
  return [
    `date +%s%N > ${mark}/svc-start`,
    `PATH=${PG_BIN}:$PATH`,
    'initdb -D "$PWD/data" -A trust -U postgres >/dev/null',
    `exec postgres -D "$PWD/data" -h "${hostVar}" -p ${port} -k "$PWD" -c log_line_prefix='%m ' -c log_timezone=UTC`,
  ].join('\n');
}

/** When PostgreSQL said it accepts connections, from its log (ms since the epoch). */
function readyAt(log: string): number {
  const m = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) UTC .*database system is ready to accept connections/m.exec(log);
  if (!m) throw new Error(`no "ready to accept connections" in the PostgreSQL log:\n${log.slice(-2000)}`);
  return Date.parse(`${m[1].replace(' ', 'T')}Z`);
}

const nsFile = (file: string) => Number(BigInt(fs.readFileSync(file, 'utf8').trim()) / 1_000_000n);

function markDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-bench-svc-'));
  fs.chmodSync(dir, 0o777);
  return dir;
}

async function viaCauseway(client: Client, nc: NatsConnection, taskQueue: string, period: number): Promise<Parts> {
  const mark = markDir();
  try {
    const plan = compilePlan({
      file: 'bench-services.yml',
      text: JSON.stringify({
        plan: [
          {
            task: 'first-step',
            services: [
              {
                name: 'db',
                config: {
                  run: { user: 'postgres', path: 'sh', args: ['-c', serverScript(mark, '$DB_SERVICE_HOST', 5432)] },
                  ports: [5432],
                  startup_probe: {
                    run: { path: `${PG_BIN}/pg_isready`, args: ['-q', '-h', '((.svc:db.host))', '-p', '((.svc:db.port))'] },
                    period_seconds: period,
                    failure_threshold: Math.ceil(60 / period),
                  },
                },
              },
            ],
            config: { run: { path: 'sh', args: ['-c', `date +%s%N > ${mark}/step-start`] } },
          },
        ],
      }),
    });
    const submitted = Date.now();
    const handle = await startBuild(client, { plan, taskQueue });
    const outcome = await awaitBuild(handle);
    if (outcome.status !== 'succeeded') throw new Error(`benchmark build ${outcome.status}: ${outcome.message ?? ''}`);
    // When Temporal recorded probeService's completion: Causeway knew the service was ready.
    const history = await handle.fetchHistory();
    const events = history.events ?? [];
    const time = (e: (typeof events)[number] | undefined): number => {
      if (!e?.eventTime) throw new Error('an activity the benchmark needs is missing from the build history');
      return Number(e.eventTime.seconds ?? 0) * 1000 + (e.eventTime.nanos ?? 0) / 1e6;
    };
    const scheduled = (type: string) => events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === type);
    const after = (type: string, kind: 'started' | 'completed') => {
      const id = Number(scheduled(type)?.eventId ?? -1);
      return events.find((e) =>
        kind === 'started'
          ? Number(e.activityTaskStartedEventAttributes?.scheduledEventId ?? -2) === id
          : Number(e.activityTaskCompletedEventAttributes?.scheduledEventId ?? -2) === id,
      );
    };
    const detected = time(after('probeService', 'completed'));
    const startServiceAt = time(after('startService', 'started'));
    const runTaskAt = time(after('runTask', 'started'));
    const svcStart = nsFile(path.join(mark, 'svc-start'));
    const stepStart = nsFile(path.join(mark, 'step-start'));
    const ready = readyAt([...(await collectServiceLogs(nc, handle.workflowId)).values()].join(''));
    return {
      processStart: svcStart - submitted,
      serverStartup: ready - svcStart,
      detection: detected - ready,
      stepStart: stepStart - detected,
      total: stepStart - submitted,
      where: {
        toStartService: startServiceAt - submitted,
        startService: svcStart - startServiceAt,
        toRunTask: runTaskAt - detected,
        runTask: stepStart - runTaskAt,
      },
    };
  } finally {
    fs.rmSync(mark, { recursive: true, force: true });
  }
}

/** The same server started by hand: a shell loop polls pg_isready at the same period, then runs the "step". */
async function byHand(period: number): Promise<Parts> {
  const mark = markDir();
  const port = await freePort();
  const work = path.join(mark, 'work');
  fs.mkdirSync(work);
  execFileSync('chown', ['postgres', work]);
  const script = [
    `date +%s%N > ${mark}/start`,
    `cd ${work}`,
    `runuser -u postgres -- sh -c '${serverScript(mark, '127.0.0.1', port).replace(/'/g, `'\\''`)}' > ${mark}/pg.log 2>&1 &`,
    'pg=$!',
    `until ${PG_BIN}/pg_isready -q -h 127.0.0.1 -p ${port}; do sleep ${period}; done`,
    `date +%s%N > ${mark}/detected`,
    `sh -c 'date +%s%N > ${mark}/step-start'`,
    'kill $pg; wait $pg',
  ].join('\n');
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn('sh', ['-c', script], { stdio: 'ignore' });
      child.once('error', reject);
      child.once('exit', (code) => (code === 0 || code === 143 ? resolve() : reject(new Error(`by-hand script exited ${code}`))));
    });
    const start = nsFile(path.join(mark, 'start'));
    const svcStart = nsFile(path.join(mark, 'svc-start'));
    const detected = nsFile(path.join(mark, 'detected'));
    const stepStart = nsFile(path.join(mark, 'step-start'));
    const ready = readyAt(fs.readFileSync(path.join(mark, 'pg.log'), 'utf8'));
    return {
      processStart: svcStart - start,
      serverStartup: ready - svcStart,
      detection: detected - ready,
      stepStart: stepStart - detected,
      total: stepStart - start,
    };
  } finally {
    fs.rmSync(mark, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const f0 = (n: number) => n.toFixed(0);
/** Everything but the server's own startup: what the engine (or the shell) adds. */
const added = (p: Parts) => p.processStart + p.detection + p.stepStart;

function table(causeway: Parts[], hand: Parts[]): string {
  const row = (label: string, pick: (p: Parts) => number) =>
    `| ${label} | ${f0(median(causeway.map(pick)))} | ${f0(median(hand.map(pick)))} |`;
  return [
    '| part (median, ms) | Causeway | by hand (shell loop) |',
    '|---|---:|---:|',
    row('process start (submit → service command runs)', (p) => p.processStart),
    row('server startup (initdb + postgres → accepts connections)', (p) => p.serverStartup),
    row('detection delay (accepts connections → readiness known)', (p) => p.detection),
    row('step start (readiness known → step command runs)', (p) => p.stepStart),
    row('total (submit → step command runs)', (p) => p.total),
    row('all but the server startup', added),
  ].join('\n');
}

function whereTable(causeway: Parts[]): string {
  const row = (label: string, pick: (w: Where) => number) => `| ${label} | ${f0(median(causeway.map((p) => pick(p.where!))))} |`;
  return [
    '| where Causeway spends it (median, ms) | |',
    '|---|---:|',
    row(
      'submit → startService runs (workflow start, 1 workflow task with prepareBuild as a local activity, dispatch)',
      (w) => w.toStartService,
    ),
    row(
      'startService runs → service command runs (address, hub + service namespace + veth and directories at once, wrapper, nsenter, hosts view, setpriv)',
      (w) => w.startService,
    ),
    row('probe done → runTask runs (a workflow task, dispatch)', (w) => w.toRunTask),
    row('runTask runs → step command runs (step directory, wrapper, nsenter, hosts view)', (w) => w.runTask),
  ].join('\n');
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const progress = (message: string) => console.error(`[bench] ${message}`);
  if (process.getuid?.() !== 0) throw new Error('bench:services runs PostgreSQL as the postgres user and needs root');
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-bench-'));
  let stackStarted = false;
  let worker: RunningWorker | undefined;
  let connection: Connection | undefined;
  let nc: NatsConnection | undefined;
  const cleanup = async () => {
    await nc?.close().catch(() => undefined);
    await worker?.shutdown().catch(() => undefined);
    await connection?.close().catch(() => undefined);
    if (stackStarted) await stopStack(home);
    fs.rmSync(home, { recursive: true, force: true });
  };
  try {
    const stack = await startStackOnFreePorts({ home, persistent: false, startWorker: false, log: progress });
    stackStarted = true;
    const workflowBundle = await bundleBuildWorkflows();
    const taskQueue = `bench-services-${randomUUID().slice(0, 8)}`;
    worker = await startLocalWorker({
      temporalAddress: stack.temporal.address,
      namespace: 'default',
      natsUrl: stack.nats.url,
      home,
      name: `bench-${randomUUID().slice(0, 8)}`,
      taskQueue,
      logMaxAgeSeconds: 3600,
      killGraceMs: 2000,
      workflowBundle,
      log: pino({ level: 'warn' }),
    });
    nc = await connectNats(stack.nats.url, 'bench-services', { home });
    connection = await Connection.connect({ address: stack.temporal.address });
    const client = new Client({ connection, dataConverter: causewayDataConverter(loadCodecKeys({ home })) });

    progress('warming up');
    await viaCauseway(client, nc, taskQueue, opts.period);
    await byHand(opts.period);
    const causeway: Parts[] = [];
    const hand: Parts[] = [];
    for (let r = 1; r <= opts.repeat; r++) {
      // Interleaved, so drift over the run touches both alike.
      causeway.push(await viaCauseway(client, nc, taskQueue, opts.period));
      hand.push(await byHand(opts.period));
      progress(`run ${r}/${opts.repeat}: Causeway ${f0(causeway.at(-1)!.total)} ms, by hand ${f0(hand.at(-1)!.total)} ms`);
    }
    const overhead = median(causeway.map(added)) - median(hand.map(added));
    const detection = median(causeway.map((p) => p.detection));
    const w = (pick: (x: Where) => number) => median(causeway.map((p) => pick(p.where!)));
    const cpus = `${os.cpus().length} CPUs (${os.cpus()[0]?.model.trim() ?? 'unknown'}, load ${os.loadavg()[0].toFixed(1)})`;
    const lines = [
      MARK_START,
      '## Services: submit → first step of a plan with one PostgreSQL service',
      '',
      `\`npm run bench:services -- --repeat ${opts.repeat} --period ${opts.period}\` on ${cpus}, Node ${process.version}, ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}.`,
      `PostgreSQL ${path.basename(path.dirname(PG_BIN))} (initdb + postgres as user postgres), pg_isready every ${opts.period}s in both columns;`,
      "Causeway times are from submitting the build (the CLI's own start-up is not counted), by-hand times from the shell script's start.",
      "Server start-up is PostgreSQL's own work (it varies from run to run and with the machine's load); it is left out of the overhead.",
      '',
      table(causeway, hand),
      '',
      whereTable(causeway),
      '',
      `**Overhead Causeway adds** (all but the server start-up, Causeway − by hand): **${f0(overhead)} ms** (target < ${TARGET_MS} ms: ${overhead < TARGET_MS ? 'met' : 'not met'}).`,
      `Of Causeway's part, ${f0(w((x) => x.toStartService))} ms passes before startService runs (starting the workflow and its first workflow task, in`,
      `which prepareBuild runs as a local activity: every build pays it, with or without services), ${f0(w((x) => x.toRunTask))} ms is the workflow task between readiness and the step, and`,
      `${f0(w((x) => x.startService + x.runTask))} ms is the local runtime setting up the service's and the step's processes.`,
      `**Detection delay**: ${f0(detection)} ms median from PostgreSQL logging that it accepts connections to Temporal recording the probe's success`,
      `(by hand: ${f0(median(hand.map((p) => p.detection)))} ms); the probe activity returns as soon as a probe passes (the service's output since is sent`,
      'by superviseService). Process start includes prepareBuild, the build’s hub namespace with its bridge, the service’s own namespace and veth (docs/networking.md) and the service directories (made at once), the /etc/hosts view and setpriv;',
      'step start includes the task activity, the step directory, nsenter into the hub and the /etc/hosts view.',
      MARK_END,
    ];
    const text = lines.join('\n');
    console.log(`\n${text}\n`);
    writeSection(opts.out, { start: MARK_START, end: MARK_END }, text);
    console.log(`wrote ${opts.out}`);
  } finally {
    await cleanup();
  }
}

runMain(main);
