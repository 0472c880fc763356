// The embedded dev stack: a Temporal dev server, a JetStream-enabled nats-server and
// optionally one local worker, started as detached processes so they outlive the CLI
// that started them. The CLI (`causeway dev ...`) and jest's globalSetup both use it.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect as natsConnect } from '@nats-io/transport-node';
import { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { z } from 'zod';
import { CODEC_KEYS_FILE, CODEC_TOKEN_FILE, ensureCodecKeys, secretFile } from '../../common/codec';
import { readEnv } from '../../common/config';
import { ensureIdTokenKeys, idtokenSettings } from '../../common/idtoken';
import { natsAuth } from '../../common/nats-auth';
import { writeNatsAuthConfig } from './nats-auth';
import { isAlive, readState, stateFile, type StackState } from './state';

// The UI has no default of its own: like `temporal server start-dev`, it is the Temporal port + 1000 (8233).
export const DEFAULT_PORTS = { temporal: 7233, nats: 4222, natsMonitor: 8222 } as const;

/** Registered at server start so workflows can upsert them and the UI can filter on them. */
export const SEARCH_ATTRIBUTES = [
  'CausewayStatus',
  'CausewayPlan',
  'CausewayRetryOf',
  'CausewayTrigger',
  'CausewayPipeline',
  'CausewayJob',
  'CausewayBuildNumber',
] as const;

const HOST = '127.0.0.1';
/**
 * The dev server's SQLite file in write-ahead-log mode, synced at checkpoints rather than at every
 * commit: ~15 of its ~70 CPU-ms per one-step build less (BENCHMARKS.md, "One-step build latency").
 * A killed server loses nothing; a power cut can lose the last commits, never the file's integrity.
 */
const SQLITE_PRAGMAS = ['journal_mode=WAL', 'synchronous=NORMAL'];
const STOP_GRACE_MS = 10_000;
const READY_TIMEOUT_MS = 120_000; // a cold start on a busy 2-core CI machine takes tens of seconds

export type ProgressLog = (message: string) => void;

/** `reused` is true when a live stack was already running in that home and was returned as is. */
export type StackInfo = StackState & { reused: boolean };

export interface StackPorts {
  temporal?: number;
  ui?: number;
  nats?: number;
  natsMonitor?: number;
  /** the codec server the UI decodes payloads with (default: the UI's port + 1) */
  codec?: number;
}

export interface StartStackOptions {
  home: string;
  ports?: StackPorts;
  persistent: boolean;
  startWorker: boolean;
  /** the codec server the Temporal UI decrypts payloads through; by default when the stack starts its worker */
  codecServer?: boolean;
  log?: ProgressLog;
}

export interface ComponentStatus {
  component: string;
  pid: number;
  alive: boolean;
  /** Whether the endpoint answered its protocol; workers have no endpoint, so it follows `alive`. */
  reachable: boolean;
  address: string;
}

export interface StackStatus {
  running: boolean;
  state: StackState | undefined;
  components: ComponentStatus[];
}

// ---------------------------------------------------------------- repo root, provisioning

/** The directory holding causeway's package.json, found from this file so it works from src and dist. */
export function repoRoot(from: string = __dirname): string {
  const PackageJson = z.object({ name: z.string().optional() });
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'package.json');
    if (fs.existsSync(candidate)) {
      const pkg = PackageJson.safeParse(JSON.parse(fs.readFileSync(candidate, 'utf8')));
      if (pkg.success && pkg.data.name === 'causeway') return dir;
    }
    if (path.dirname(dir) === dir) throw new Error(`no package.json named "causeway" above ${from}`);
  }
}

function defaultLog(): ProgressLog {
  // Required here: pino is ~30 files that a client command, which only reads the stack's state, never needs.
  const { createLogger } = require('../../common/logger') as typeof import('../../common/logger');
  const logger = createLogger('dev-stack');
  return (message) => logger.info(message);
}

/**
 * Builds (first time) or finds the Temporal CLI and nats-server, returning absolute paths.
 * The script's stdout contract is one `export PATH=...` line; evaluating it in the same
 * shell that resolves the commands keeps this in step with whatever the script decides.
 */
export async function provision(log: ProgressLog = defaultLog()): Promise<{ temporal: string; natsServer: string }> {
  const script = path.join(repoRoot(), 'scripts', 'provision.sh');
  const child = spawn(
    'bash',
    ['-c', 'set -euo pipefail; line=$(bash "$0"); eval "$line"; command -v temporal; command -v nats-server', script],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderrTail: string[] = [];
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  let pending = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    const lines = (pending + chunk).split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      log(line);
      stderrTail = [...stderrTail, line].slice(-20);
    }
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (code !== 0) {
    throw new Error(`${script} failed (exit ${code}):\n${[...stderrTail, pending].join('\n')}`);
  }
  const [temporal, natsServer] = stdout.trim().split('\n');
  if (!temporal || !natsServer || !path.isAbsolute(temporal) || !path.isAbsolute(natsServer)) {
    throw new Error(`${script} did not yield absolute paths for temporal and nats-server; got:\n${stdout}`);
  }
  return { temporal, natsServer };
}

// ---------------------------------------------------------------- ports and processes

/** A port that was free on 127.0.0.1 a moment ago (the OS picks it), for tests. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      server.close(() => (address && typeof address === 'object' ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Every port of a private stack, free a moment ago and all different: tests and benchmarks run
 * beside `dev up`. The kernel may hand out a port just closed again (CI saw the UI's port given
 * to NATS's monitor too), so a port already chosen is asked for anew.
 */
export async function freeStackPorts(): Promise<Required<StackPorts>> {
  const chosen = new Set<number>();
  const next = async (): Promise<number> => {
    for (;;) {
      const port = await freePort();
      if (!chosen.has(port)) {
        chosen.add(port);
        return port;
      }
    }
  };
  return { temporal: await next(), ui: await next(), nats: await next(), natsMonitor: await next(), codec: await next() };
}

function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(true));
    server.listen(port, HOST, () => server.close(() => resolve(false)));
  });
}

interface Spawned {
  pid: number;
  logFile: string;
  /** Byte offset where this run's output starts, so errors show only this run's lines. */
  logStart: number;
  exited: () => string | undefined;
}

function spawnDetached(command: string, args: string[], logFile: string, env: NodeJS.ProcessEnv, cwd: string): Spawned {
  fs.appendFileSync(logFile, `\n=== ${new Date().toISOString()} ${command} ${args.join(' ')}\n`);
  const logStart = fs.statSync(logFile).size;
  const fd = fs.openSync(logFile, 'a');
  try {
    // detached = own session: the servers survive the CLI exiting and its terminal's Ctrl-C.
    const child = spawn(command, args, { detached: true, stdio: ['ignore', fd, fd], env, cwd });
    let exit: string | undefined;
    child.on('exit', (code, signal) => (exit = signal ? `killed by ${signal}` : `exited with code ${code}`));
    child.on('error', (err) => (exit = `failed to start: ${err.message}`));
    child.unref();
    if (child.pid === undefined) throw new Error(`could not start ${command}`);
    return { pid: child.pid, logFile, logStart, exited: () => exit };
  } finally {
    fs.closeSync(fd);
  }
}

function logTail(logFile: string, from = 0, lines = 25): string {
  try {
    const text = fs.readFileSync(logFile, 'utf8').slice(from);
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function failure(what: string, proc: Spawned, reason: string): Error {
  const tail = logTail(proc.logFile, proc.logStart);
  // Both servers log Go's "listen tcp HOST:PORT: bind: address already in use".
  const taken = /(\d+): bind: address already in use/.exec(tail);
  const hint = taken ? ` (port ${taken[1]} already in use)` : '';
  return new Error(`${what} did not start: ${reason}${hint}\n--- last lines of ${proc.logFile} ---\n${tail}`);
}

async function waitReady(what: string, proc: Spawned, probe: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastError = 'not ready';
  for (;;) {
    const exit = proc.exited();
    if (exit !== undefined) throw failure(what, proc, `process ${proc.pid} ${exit}`);
    try {
      await probe();
      return;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) throw failure(what, proc, `not ready after ${READY_TIMEOUT_MS / 1000}s: ${lastError}`);
    await sleep(250);
  }
}

// ---------------------------------------------------------------- endpoint probes

async function probeTemporal(address: string): Promise<void> {
  const connection = await Connection.connect({ address, connectTimeout: 2_000 });
  try {
    await connection.withDeadline(Date.now() + 3_000, async () => {
      await connection.workflowService.describeNamespace({ namespace: 'default' });
      // start-dev registers search attributes after the frontend is up; clients need them.
      const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
      const missing = SEARCH_ATTRIBUTES.filter((name) => !(name in (customAttributes ?? {})));
      if (missing.length > 0) throw new Error(`search attributes not registered yet: ${missing.join(', ')}`);
    });
  } finally {
    await connection.close();
  }
}

async function probeWorkerPolls(address: string, taskQueue: string): Promise<void> {
  const connection = await Connection.connect({ address, connectTimeout: 2_000 });
  try {
    const { pollers } = await connection.withDeadline(Date.now() + 3_000, () =>
      connection.workflowService.describeTaskQueue({
        namespace: 'default',
        taskQueue: { name: taskQueue },
        taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
      }),
    );
    if ((pollers ?? []).length === 0) throw new Error('no poller on its task queue yet');
  } finally {
    await connection.close();
  }
}

async function probeNats(url: string, home: string): Promise<void> {
  const nc = await natsConnect({ servers: url, timeout: 2_000, reconnect: false, ...natsAuth('operator', home) });
  try {
    // Fails unless JetStream is enabled, which is what builds' logs need.
    await jetstreamManager(nc);
  } finally {
    await nc.close();
  }
}

async function reachable(probe: () => Promise<void>): Promise<boolean> {
  try {
    await probe();
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- state file

function writeState(home: string, state: StackState): void {
  // Write-then-rename so a concurrent reader never sees half a file.
  const file = stateFile(home);
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(state, null, 2) + '\n');
  fs.renameSync(`${file}.tmp`, file);
}

// ---------------------------------------------------------------- start / status / stop

export async function startStack(opts: StartStackOptions): Promise<StackInfo> {
  const log = opts.log ?? defaultLog();
  const home = path.resolve(opts.home);

  const status = await stackStatus(home);
  if (status.running && status.state) {
    log(`dev stack already running in ${home} (Temporal ${status.state.temporal.address}, NATS ${status.state.nats.url}); using it`);
    return { ...status.state, reused: true };
  }
  if (status.state) {
    log(`dev stack recorded in ${home} is not fully running; stopping what is left of it`);
    await stopStack(home);
  }

  const workerScript = path.join(repoRoot(), 'dist', 'workers', 'main.js');
  if (opts.startWorker && !fs.existsSync(workerScript)) {
    throw new Error(`${workerScript} does not exist; run \`npm run build\` first (or start without a worker)`);
  }

  const temporalPort = opts.ports?.temporal ?? DEFAULT_PORTS.temporal;
  // Same default as `temporal server start-dev`: the UI sits 1000 above the gRPC port.
  const uiPort = opts.ports?.ui ?? temporalPort + 1000;
  const natsPort = opts.ports?.nats ?? DEFAULT_PORTS.nats;
  // Nobody types the monitoring port; when NATS is moved off its default, a fixed
  // monitoring default would make a second stack clash, so take any free port.
  const natsMonitorPort = opts.ports?.natsMonitor ?? (opts.ports?.nats === undefined ? DEFAULT_PORTS.natsMonitor : await freePort());
  // The UI's decoder is for people (`dev up`, whatever its runtime); tests decode with the codec itself.
  const codecPort = (opts.codecServer ?? opts.startWorker) ? (opts.ports?.codec ?? uiPort + 1) : undefined;
  const wanted: Array<[string, number]> = [
    ['Temporal gRPC', temporalPort],
    ['Temporal UI', uiPort],
    ['NATS', natsPort],
    ['NATS monitoring', natsMonitorPort],
    ...(codecPort !== undefined ? [['codec server', codecPort] as [string, number]] : []),
  ];
  const clash = wanted.find(([, port], i) => wanted.findIndex(([, p]) => p === port) !== i);
  if (clash)
    throw new Error(
      `port ${clash[1]} is requested twice (${wanted
        .filter(([, p]) => p === clash[1])
        .map(([w]) => w)
        .join(' and ')})`,
    );
  for (const [what, port] of wanted) {
    if (await portInUse(port))
      throw new Error(`port ${port} (${what}) is already in use on ${HOST}; stop what uses it or choose another port`);
  }

  log('provisioning Temporal CLI and nats-server');
  const bins = await provision(log);

  const logDir = path.join(home, 'logs');
  const storeDir = path.join(home, 'nats');
  fs.mkdirSync(logDir, { recursive: true });
  fs.mkdirSync(storeDir, { recursive: true });
  const dbFile = opts.persistent ? path.join(home, 'temporal.sqlite') : null;
  // Every payload in history is encrypted with this key (0600); workers and clients find it in the home.
  ensureCodecKeys(path.join(home, CODEC_KEYS_FILE));
  const codecUrl = codecPort !== undefined ? `http://${HOST}:${codecPort}` : undefined;
  // The UI sends no credentials to a codec endpoint, so the token is the endpoint's first path segment.
  const codecEndpoint = codecUrl && `${codecUrl}/${secretFile(path.join(home, CODEC_TOKEN_FILE), true)}`;
  // The codec server is the idtoken issuer of the stack's worker, so its tokens verify against the
  // stack; CAUSEWAY_IDTOKEN_ISSUER names another (a public tunnel to it that a cloud can reach).
  const idtoken =
    codecUrl !== undefined
      ? idtokenSettings(readEnv({ ...process.env, CAUSEWAY_HOME: home }), { issuer: process.env.CAUSEWAY_IDTOKEN_ISSUER ?? codecUrl })
      : undefined;
  if (idtoken) ensureIdTokenKeys(idtoken.keysFile);
  const idtokenEnv = idtoken ? { CAUSEWAY_IDTOKEN_ISSUER: idtoken.issuer, CAUSEWAY_IDTOKEN_KEYS: idtoken.keysFile } : {};

  const started: Array<{ pid: number; command: string }> = [];
  try {
    log(`starting Temporal dev server on ${HOST}:${temporalPort} (${dbFile ? `data in ${dbFile}` : 'in memory'})`);
    const temporalArgs = [
      'server',
      'start-dev',
      '--ip',
      HOST,
      '--port',
      String(temporalPort),
      '--ui-port',
      String(uiPort),
      '--log-level',
      'warn',
      // The dev server reads its transfer queue at most 20 times a second by default, and every
      // sequential step waits for two reads (~60 of ~107 ms a step, measured): production
      // clusters run with it raised, and so does the embedded stack (docs/production.md).
      '--dynamic-config-value',
      'history.transferProcessorMaxPollRPS=1000',
      ...SEARCH_ATTRIBUTES.flatMap((name) => ['--search-attribute', `${name}=Keyword`]),
      ...(dbFile ? ['--db-filename', dbFile, ...SQLITE_PRAGMAS.flatMap((pragma) => ['--sqlite-pragma', pragma])] : []),
      ...(codecEndpoint ? ['--ui-codec-endpoint', codecEndpoint] : []),
    ];
    const temporal = spawnDetached(bins.temporal, temporalArgs, path.join(logDir, 'temporal.log'), process.env, home);
    started.push({ pid: temporal.pid, command: bins.temporal });

    log(`starting nats-server with JetStream on ${HOST}:${natsPort} (data in ${storeDir})`);
    // Credentials for each role, and anonymous connections refused (cli/dev/nats-auth.ts).
    const natsArgs = [
      '-c',
      writeNatsAuthConfig(home),
      '-js',
      '-sd',
      storeDir,
      '-a',
      HOST,
      '-p',
      String(natsPort),
      '-m',
      String(natsMonitorPort),
    ];
    const nats = spawnDetached(bins.natsServer, natsArgs, path.join(logDir, 'nats.log'), process.env, home);
    started.push({ pid: nats.pid, command: bins.natsServer });

    const address = `${HOST}:${temporalPort}`;
    const natsUrl = `nats://${HOST}:${natsPort}`;
    await Promise.all([
      waitReady(`Temporal on ${address}`, temporal, () => probeTemporal(address)),
      waitReady(`NATS on ${natsUrl}`, nats, () => probeNats(natsUrl, home)),
    ]);
    log('Temporal and NATS are ready');

    const workers: StackState['workers'] = [];
    if (opts.startWorker) {
      log('starting local worker');
      const env = { ...process.env, TEMPORAL_ADDRESS: address, NATS_URL: natsUrl, CAUSEWAY_HOME: home, ...idtokenEnv };
      const worker = spawnDetached(process.execPath, [workerScript], path.join(logDir, 'worker.log'), env, home);
      started.push({ pid: worker.pid, command: workerScript });
      // Until its pollers reach Temporal, a first build would be told no worker polls its queue.
      const taskQueue = readEnv(env).CAUSEWAY_TASK_QUEUE;
      await waitReady(`the local worker on task queue ${taskQueue}`, worker, () => probeWorkerPolls(address, taskQueue));
      workers.push({ name: 'worker', pid: worker.pid, command: workerScript, logFile: worker.logFile });
    }
    let codecServer: StackState['codecServer'];
    if (codecPort !== undefined && codecUrl) {
      const cliScript = path.join(repoRoot(), 'dist', 'cli', 'main.js');
      const args = [
        cliScript,
        'codec-server',
        '--listen',
        `${HOST}:${codecPort}`,
        '--ui-origin',
        `http://${HOST}:${uiPort}`,
        `http://localhost:${uiPort}`,
      ];
      const proc = spawnDetached(
        process.execPath,
        args,
        path.join(logDir, 'codec-server.log'),
        { ...process.env, CAUSEWAY_HOME: home, ...idtokenEnv },
        home,
      );
      started.push({ pid: proc.pid, command: cliScript });
      log(`codec server on ${codecUrl}: the Temporal UI shows payloads decrypted`);
      if (idtoken) log(`idtoken issuer ${idtoken.issuer}: its /.well-known/ documents are the codec server's`);
      codecServer = { url: codecUrl, pid: proc.pid, command: cliScript, logFile: proc.logFile };
    }

    const state: StackState = {
      persistent: opts.persistent,
      logDir,
      temporal: {
        address,
        uiUrl: `http://${HOST}:${uiPort}`,
        pid: temporal.pid,
        command: bins.temporal,
        args: temporalArgs,
        dbFile,
        logFile: temporal.logFile,
      },
      nats: {
        url: natsUrl,
        monitorUrl: `http://${HOST}:${natsMonitorPort}`,
        pid: nats.pid,
        command: bins.natsServer,
        args: natsArgs,
        storeDir,
        logFile: nats.logFile,
      },
      workers,
      ...(codecServer ? { codecServer } : {}),
      startedAt: new Date().toISOString(),
    };
    writeState(home, state);
    return { ...state, reused: false };
  } catch (err) {
    // Leave nothing half-started behind: a later `dev up` would find its ports taken.
    await terminate(started.reverse());
    throw err;
  }
}

/**
 * A private stack (tests, benchmarks) on ports free a moment ago. Another process can take one
 * of them before its server binds it (an outgoing connection is given the same ephemeral port:
 * seen on the real node's busy machine), so a start that finds a port taken, and has cleaned up
 * after itself, tries again on fresh ports.
 */
export async function startStackOnFreePorts(opts: Omit<StartStackOptions, 'ports'>, tries = 3): Promise<StackInfo> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startStack({ ...opts, ports: await freeStackPorts() });
    } catch (err) {
      if (attempt >= tries || !/already in use/.test((err as Error).message)) throw err;
      (opts.log ?? defaultLog())(`a port was taken before the stack bound it; trying again on others (${attempt}/${tries})`);
    }
  }
}

export async function stackStatus(home: string): Promise<StackStatus> {
  const state = readState(path.resolve(home));
  if (!state) return { running: false, state: undefined, components: [] };
  const temporalAlive = isAlive(state.temporal.pid, state.temporal.command);
  const natsAlive = isAlive(state.nats.pid, state.nats.command);
  const [temporalUp, natsUp] = await Promise.all([
    temporalAlive && reachable(() => probeTemporal(state.temporal.address)),
    natsAlive && reachable(() => probeNats(state.nats.url, path.resolve(home))),
  ]);
  const components: ComponentStatus[] = [
    { component: 'temporal', pid: state.temporal.pid, alive: temporalAlive, reachable: temporalUp, address: state.temporal.address },
    { component: 'nats', pid: state.nats.pid, alive: natsAlive, reachable: natsUp, address: state.nats.url },
    ...state.workers.map((w) => {
      const alive = isAlive(w.pid, w.command);
      return { component: w.name, pid: w.pid, alive, reachable: alive, address: '-' };
    }),
    ...(state.codecServer ? [state.codecServer] : []).map((c) => {
      const alive = isAlive(c.pid, c.command);
      return { component: 'codec-server', pid: c.pid, alive, reachable: alive, address: c.url };
    }),
  ];
  return { running: components.every((c) => c.alive && c.reachable), state, components };
}

async function terminate(procs: Array<{ pid: number; command: string }>): Promise<void> {
  const live = procs.filter((p) => isAlive(p.pid, p.command));
  for (const p of live) process.kill(p.pid, 'SIGTERM');
  const deadline = Date.now() + STOP_GRACE_MS;
  while (live.some((p) => isAlive(p.pid, p.command)) && Date.now() < deadline) await sleep(100);
  for (const p of live) {
    if (isAlive(p.pid, p.command)) process.kill(p.pid, 'SIGKILL');
  }
  while (live.some((p) => isAlive(p.pid, p.command))) await sleep(50);
}

/**
 * Stops one server of the stack (SIGTERM, then SIGKILL) and starts it again with the same
 * arguments and data, as an operator would to apply a change or as a test does to prove
 * builds survive it. Returns the new pid.
 */
export async function restartComponent(home: string, component: 'temporal' | 'nats'): Promise<number> {
  const dir = path.resolve(home);
  const state = readState(dir);
  if (!state) throw new Error(`no dev stack recorded in ${dir}`);
  const current = state[component];
  if (current.args.length === 0)
    throw new Error(
      `the ${component} of the stack in ${dir} was started by an older causeway; restart the whole stack (causeway dev down && causeway dev up)`,
    );
  await terminate([current]);
  const probe = component === 'temporal' ? () => probeTemporal(state.temporal.address) : () => probeNats(state.nats.url, dir);
  for (let attempt = 1; ; attempt++) {
    const proc = spawnDetached(current.command, current.args, current.logFile, process.env, dir);
    try {
      await waitReady(component === 'temporal' ? `Temporal on ${state.temporal.address}` : `NATS on ${state.nats.url}`, proc, probe);
      writeState(dir, { ...state, [component]: { ...current, pid: proc.pid } });
      return proc.pid;
    } catch (err) {
      // Temporal's dev server picks its internal ports when it starts: one another process took
      // between its pick and its bind is a race to run again, not a port to give up on.
      if (attempt >= RESTART_ATTEMPTS || !/already in use/.test((err as Error).message)) throw err;
      await sleep(RESTART_RETRY_MS);
    }
  }
}

const RESTART_ATTEMPTS = 3;
const RESTART_RETRY_MS = 500;

/** Stops the stack recorded in `home`; returns what was running. A missing stack is not an error. */
export async function stopStack(home: string): Promise<StackState | undefined> {
  const state = readState(path.resolve(home));
  if (!state) return undefined;
  // Workers first, so they do not spend the grace period reconnecting to vanishing servers.
  await terminate([...state.workers, ...(state.codecServer ? [state.codecServer] : [])]);
  await terminate([state.nats, state.temporal]);
  fs.rmSync(stateFile(path.resolve(home)), { force: true });
  return state;
}
