// The local runtime's services: a service's whole lifecycle as a detached process (start in its
// own network namespace, readiness by ports or startup_probe, supervision, SIGTERM/SIGKILL stop,
// handover on worker shutdown). Over ~350 lines because those four activities share one state
// file, one log and one directory layout; split them and each would re-derive all three.
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import type { NatsConnection } from '@nats-io/transport-node';
import { Context } from '@temporalio/activity';
import { BuildPublisher } from '../../../common/nats';
import { Redactor } from '../../../common/redact';
import { interpolateServices, serviceEnv, type ServiceAddress } from '../../../common/services';
import type { ServiceConfig } from '../../../schemas/compiled';
import { subjects } from '../../../schemas/messages';
import { PROBE_DEFAULTS } from '../../../schemas/services';
import { safeJoin } from '../../artifacts';
import type { ActivityDeps } from '../../deps';
import { ServiceFailed, StepDetached } from '../../errors';
import { heartbeating } from '../../heartbeat';
import { mapServiceInputs } from '../../step/service-inputs';
import type { ResolvedServiceRequest } from '../types';
import type { ProbeServiceRequest, ServiceLogOffsets, ServiceRef, StopServiceRequest, SuperviseServiceRequest } from '../../types';
import { placeInputs, unmountUnder } from './inputs';
import { attachService, detachService, inNetwork, serviceScope, writeHosts } from './network';
import { exitStatus, FILES, findProcess, isAlive, reapGroup, startProcess, terminate, type StepProcess } from './process';
import { runCommand, type RunResult } from './spawner';
import { StepLog } from './step-log';
import { buildUser, canIsolate, notIsolatedNote, openBuildDir, stepPath } from './isolation';
import { asUser, chownTree, splitLoaderEnv, userEnv, userIds, type UserIds } from './users';

const STATE_FILE = 'service.json';
const TAIL_LINES = 20;
/**
 * How often the readiness helper tries each port: a port that opens is noticed within this
 * (the target is 50 ms). Every 5 ms slowed PostgreSQL's start-up by ~250 ms on 2 CPUs (a wake-up
 * per refused connection); every 20 ms costs nothing measurable.
 */
const TCP_POLL_MS = 20;
/** without a startup_probe, how long the ports may take to open: the probe's default budget, doubled for slow CI hosts */
const PORTS_TIMEOUT_MS = 2 * PROBE_DEFAULTS.failureThreshold * PROBE_DEFAULTS.periodSeconds * 1000;
/** how often a waiting activity looks for the service's exit and new output */
const WATCH_MS = 20;

/** What startService decided, read by the activities that follow it (possibly on a retry). */
interface ServiceState {
  address: ServiceAddress;
  config: ServiceConfig;
  env: Record<string, string>;
  /** where the service's files live: its own directory, or one under /tmp a run.user can reach */
  root: string;
  /** the service's own network namespace, where its probe runs too; absent in loopback mode */
  netns?: string;
  /** the /etc/hosts the service and its probe see: the services in its scope by name */
  hosts?: string;
  /** the uid the service and its probe run as (the build's, or run.user's), its extra groups, and the loader's variables of its env (splitLoaderEnv) */
  runAs?: { ids: UserIds; groups: number[]; loader: Record<string, string> };
}

/**
 * A runtime that runs services as containers (containerd) keeps this lifecycle and replaces the
 * process: run.user is the image's, the command is the container's, the probe runs inside it.
 */
export interface ServiceLauncher {
  /** prepares the service's container in `dir` (its files in `work`): the command and env the detached wrapper runs it with */
  prepare(s: {
    req: ResolvedServiceRequest;
    dir: string;
    work: string;
    config: ServiceConfig;
    env: Record<string, string>;
    netns?: string;
    hosts?: string;
    note(text: string): void;
  }): Promise<{ command: string[]; env: Record<string, string> }>;
  /** the startup probe's command, run inside the service */
  probe(dir: string, command: string[]): string[];
  /** the service was stopped: what its container left on the host goes */
  stopped(dir: string): Promise<void>;
}

/**
 * A cancellation because this worker is shutting down is not the build's: the service keeps
 * running and the retried activity, on the worker that takes over, re-attaches to it.
 */
function handedOver(ctx: Context): StepDetached | undefined {
  return ctx.cancellationDetails?.workerShutdown
    ? new StepDetached('worker shut down; the service keeps running and is handed over')
    : undefined;
}

/** Publishes a service's output on its own subject; StepLog does the offsets and message ids. */
class ServiceLogPublisher extends BuildPublisher {
  constructor(
    nc: NatsConnection,
    private readonly subject: string,
  ) {
    super(nc);
  }

  protected override logSubject(): string {
    return this.subject;
  }
}

function serviceDir(home: string, ref: ServiceRef): string {
  return path.join(home, 'builds', ref.buildId, ref.runId, 'services', ref.scopeStepId, ref.runKey, ref.name);
}

function serviceLog(deps: ActivityDeps, ref: ServiceRef, dir: string, offsets?: ServiceLogOffsets, writer = 'run'): StepLog {
  const publisher = new ServiceLogPublisher(deps.nc, subjects.service(ref.buildId, ref.scopeStepId, ref.name));
  const runName = `${ref.runId}/${ref.scopeStepId}/${ref.runKey}/svc/${ref.name}/${writer}`;
  // A service's log is redacted as a task's is: the step layer lists the values (activities/step/service.ts).
  const redactor = new Redactor();
  for (const value of ref.redact ?? []) redactor.add(value);
  return new StepLog(publisher, ref.buildId, ref.scopeStepId, dir, runName, offsets ? { ...offsets } : undefined, redactor);
}

async function readState(dir: string): Promise<ServiceState | undefined> {
  try {
    return JSON.parse(await fs.readFile(path.join(dir, STATE_FILE), 'utf8')) as ServiceState;
  } catch {
    return undefined;
  }
}

/**
 * Starts the service as a detached process in the build's network, or finds the one a
 * previous attempt of this activity started (idempotent by name).
 */
export async function startLocalService(
  deps: ActivityDeps,
  given: ResolvedServiceRequest,
  launcher?: ServiceLauncher,
): Promise<{ address: ServiceAddress; offsets: ServiceLogOffsets }> {
  // ((.svc:...)) in the spec: this step's services at the addresses this runtime gives them.
  const scope = await serviceScope(given, given.scope, given.siblings);
  const req = { ...given, scope, address: scope[given.name] ?? given.address, spec: withAddresses(given.name, given.spec, scope) };
  const dir = serviceDir(deps.home, req);
  const log = serviceLog(deps, req, dir);
  return heartbeating(
    async () => {
      const state = await readState(dir);
      if (state && (await findProcess(dir))) return { address: state.address, offsets: log.offsets };

      // The namespace, the service's directory and the directories of its files are made at
      // once: the service's start waits for all of them, and none of them needs another.
      const network = attachService(req, req.address.host);
      network.catch(() => undefined);
      // An earlier attempt's input views first: a mount point cannot be removed.
      const own = unmountUnder(dir)
        .then(() => fs.rm(dir, { recursive: true, force: true }))
        .then(() => fs.mkdir(dir, { recursive: true }));
      own.catch(() => undefined);
      const { config } = req.spec;
      // ((.svc:...)) refs name hosts and ports, never the namespace: the config need not wait for it.
      const ports = Object.fromEntries(config.ports.map((p) => [p.name, p.number]));
      const names = Object.keys(ports);
      const located: ServiceAddress = { ...req.address, ports, primaryPort: names.includes('default') ? 'default' : names[0] };
      // A container's run.user is its image's, not this host's.
      const user = !launcher && config.run.user && config.run.user !== os.userInfo().username ? config.run.user : undefined;
      if (user && process.getuid?.() !== 0) {
        throw new ServiceFailed(
          `service ${req.name}: run.user ${user}: the worker runs as ${os.userInfo().username} and can only run services as another user when it is root`,
        );
      }
      // A run.user must reach its files, and the worker's home is usually private to the
      // worker: such a service's files live under the system temp directory instead.
      const root = user ? path.join(os.tmpdir(), 'causeway-services', createHash('sha256').update(dir).digest('hex').slice(0, 16)) : dir;
      const work = path.join(root, 'work');
      const files = (root === dir ? own : Promise.resolve()).then(async () => {
        if (root !== dir) await unmountUnder(work);
        await fs.rm(work, { recursive: true, force: true });
        await Promise.all(['work', 'home', 'tmp'].map((sub) => fs.mkdir(path.join(root, sub), { recursive: true })));
      });
      await Promise.all([own, files]);
      // Copy-on-write views of the producers' outputs, as a task's inputs (inputs.ts): one mount each, whatever the size.
      const inputs = mapServiceInputs(req, config).map((input) => ({ from: input.ref.path, to: safeJoin(work, input.path) }));
      await placeInputs(root, inputs, []);
      // The build's own uid (when the worker is root; a container has its own): the service cannot touch other builds or the worker.
      const build = !launcher && canIsolate() ? await buildUser(deps.home, req.buildId) : undefined;
      if (build) await openBuildDir(deps.home, req.buildId, build);
      else if (!launcher) log.noteLater(notIsolatedNote());
      const ids = user ? await takeOver(root, user) : build;
      if (ids && !user) await Promise.all(['work', 'home', 'tmp'].map((sub) => chownTree(path.join(root, sub), ids)));
      const net = await network;
      const address: ServiceAddress = { ...located, network: net.network };
      const hosts = net.netns ? path.join(dir, 'hosts') : undefined;
      if (hosts) await writeHosts(hosts, { ...req.scope, [req.name]: address });

      const host: Record<string, string> = launcher
        ? {}
        : {
            PATH: stepPath(),
            LANG: process.env.LANG ?? 'C.UTF-8',
            HOME: path.join(root, 'home'),
            TMPDIR: path.join(root, 'tmp'),
          };
      const all: Record<string, string> = {
        ...host,
        ...config.params,
        ...req.spec.params,
        ...serviceEnv({ [req.name]: address }),
        // The service's own address without its name, so a generic config can bind to it.
        SERVICE_HOST: address.host,
        ...(address.primaryPort ? { SERVICE_PORT: String(address.ports[address.primaryPort]) } : {}),
        ...(user ? userEnv(user) : {}),
      };
      // Started by root helpers: the loader's variables reach only the service's (and probe's) own command.
      const { env, loader } = ids ? splitLoaderEnv(all) : { env: all, loader: {} };
      const runAs = ids ? { ids, groups: user && build ? [build.gid] : [], loader } : undefined;
      await fs.writeFile(
        path.join(dir, STATE_FILE),
        JSON.stringify({ address, config, env, root, netns: net.netns, hosts, runAs } satisfies ServiceState),
      );
      const run = [config.run.path, ...config.run.args];
      const proc = launcher
        ? await startProcess({
            dir,
            cwd: dir,
            ...(await launcher.prepare({ req, dir, work, config, env, netns: net.netns, hosts, note: (t) => log.noteLater(t) })),
          })
        : await startProcess({
            dir,
            cwd: safeJoin(work, config.run.dir ?? '.'),
            command: inNetwork(net.netns, runAs ? asUser(runAs.ids, run, runAs.groups, runAs.loader) : run, hosts),
            env,
          });
      // Notes after the start, and not waited for: neither the service nor its probe waits for
      // NATS. The probe sends the service's output from the offsets returned here.
      log.noteLater(net.note);
      if (!launcher && (config.image_resource || req.spec.image))
        log.noteLater('the local runtime runs this service on the host, without an image (image_resource/image is ignored)');
      const listed = Object.entries(address.ports).map(([n, p]) => `${n} ${p}`);
      log.noteLater(
        `service ${req.name} started (pid ${proc.pid}) on ${address.host}${listed.length ? `, ports: ${listed.join(', ')}` : ''}`,
      );
      return { address, offsets: log.offsets };
    },
    () => log.offsets,
  );
}

function withAddresses<T>(name: string, config: T, scope: Record<string, ServiceAddress>): T {
  try {
    return interpolateServices(config, scope);
  } catch (err) {
    throw new ServiceFailed(`service ${name}: ${(err as Error).message}`);
  }
}

/** The user's ids, with the files of the service made theirs. */
async function takeOver(root: string, user: string): Promise<UserIds> {
  try {
    const ids = await userIds(user);
    await chownTree(root, ids);
    return ids;
  } catch (err) {
    throw new ServiceFailed(`run.user ${user}: ${(err as Error).message}`);
  }
}

/** The service's last lines of output, for the message of a service that failed. */
async function tail(dir: string): Promise<string> {
  const parts = await Promise.all(
    [FILES.stdout, FILES.stderr].map((f) =>
      fs.readFile(path.join(dir, f), 'utf8').then(
        (t) => t.split('\n').filter(Boolean).slice(-TAIL_LINES),
        () => [],
      ),
    ),
  );
  const lines = parts.flat();
  return lines.length ? lines.join('\n') : '(no output)';
}

async function attached(dir: string, name: string): Promise<{ proc: StepProcess; state: ServiceState }> {
  const [proc, state] = await Promise.all([findProcess(dir), readState(dir)]);
  if (!proc || !state) throw new ServiceFailed(`service ${name} was not started (its directory ${dir} has no process)`);
  return { proc, state };
}

/**
 * Waits until the service is ready: with a startup_probe, the probe succeeds; without one,
 * every port accepts a TCP connection, checked from inside the build's network by a helper
 * that tries every few milliseconds. The service exiting first fails at once.
 */
export async function probeLocalService(
  deps: ActivityDeps,
  req: ProbeServiceRequest,
  launcher?: ServiceLauncher,
): Promise<ServiceLogOffsets> {
  const ctx = Context.current();
  const dir = serviceDir(deps.home, req);
  const log = serviceLog(deps, req, dir, (ctx.info.heartbeatDetails as ServiceLogOffsets | undefined) ?? req.offsets);
  const { proc, state } = await attached(dir, req.name);
  return heartbeating(
    async () => {
      const stop = new AbortController();
      // One drain at a time: two reading from the same offset could send chunks of different
      // sizes under one message id, and JetStream would keep only the first.
      let draining: Promise<unknown> = Promise.resolve();
      const drain = (final = false) => (draining = draining.then(() => log.drain(final).catch(() => false)));
      const exited = async (): Promise<never> => {
        for (;;) {
          let code = await exitStatus(dir);
          if (code !== undefined || !(await isAlive(proc))) {
            // The wrapper writes the exit file just before it exits: look once more.
            code ??= await exitStatus(dir);
            await drain(true);
            const message = log.redact(
              `service ${req.name} exited${code === undefined ? '' : ` with status ${code}`} before it was ready; its last lines:\n${await tail(dir)}`,
            );
            await log.note(message).catch(() => undefined);
            throw new ServiceFailed(message);
          }
          await delay(WATCH_MS, undefined, { signal: stop.signal });
        }
      };
      const streaming = async (): Promise<never> => {
        for (;;) {
          await drain();
          await delay(200, undefined, { signal: stop.signal });
        }
      };
      const probe = state.config.startup_probe;
      const ready = probe ? runProbe(req.name, dir, state, stop.signal, log, launcher) : portsOpen(state.address, stop.signal);
      const tooLong = async (): Promise<never> => {
        await delay(PORTS_TIMEOUT_MS, undefined, { signal: stop.signal });
        const message = log.redact(
          `service ${req.name}: ports ${Object.values(state.address.ports).join(', ')} of ${state.address.host} did not all accept connections ` +
            `within ${PORTS_TIMEOUT_MS / 1000}s (give the service a startup_probe to choose how long to wait); its last lines:\n${await tail(dir)}`,
        );
        await log.note(message).catch(() => undefined);
        throw new ServiceFailed(message);
      };
      const started = Date.now();
      try {
        const cancelled = ctx.cancelled.catch((err: unknown) => {
          throw handedOver(ctx) ?? err;
        });
        await Promise.race([ready, exited(), streaming(), cancelled, ...(probe ? [] : [tooLong()])]);
      } finally {
        stop.abort();
      }
      // The step waits for this activity, not for NATS: superviseService sends the output
      // written since, from the offsets returned here (fixed once the drain in progress ends).
      await draining;
      log.noteLater(
        `service ${req.name} is ready (${probe ? 'startup probe passed' : 'every port accepts connections'} after ${Date.now() - started} ms)`,
      );
      return log.offsets;
    },
    () => log.offsets,
  );
}

/** Resolves when every port of the service accepts a connection, tried from inside its network. */
function portsOpen(address: ServiceAddress, signal: AbortSignal): Promise<void> {
  const ports = Object.values(address.ports);
  if (ports.length === 0) return Promise.resolve();
  // A long-lived helper inside the namespace: starting a process per try would take longer than the time between tries.
  const script = `
const net = require('net');
const [host, ...ports] = process.argv.slice(1);
let left = ports.length;
const tryPort = (port) => {
  const s = net.connect({ host, port: Number(port) });
  s.once('connect', () => { s.destroy(); if (--left === 0) { process.stdout.write('ready\\n'); process.exit(0); } });
  s.once('error', () => { s.destroy(); setTimeout(() => tryPort(port), ${TCP_POLL_MS}); });
};
ports.forEach(tryPort);`;
  const [cmd, ...args] = inNetwork(address.network, [process.execPath, '-e', script, address.host, ...ports.map(String)]);
  return runCommand(cmd, args, { signal }).then((r) => {
    if (!r.stdout.includes('ready')) throw new Error(`readiness helper exited with ${r.code ?? r.signal}: ${r.stderr.trim()}`);
  });
}

/**
 * Runs the startup probe every period until it passes; failureThreshold failures in a row fail
 * the service. While the service's ports do not accept connections yet, a period counts as a
 * failure without running the probe (a database probe cannot pass before its port opens), and
 * the probe runs as soon as they open: no probe process competes with the service's start-up
 * for CPU, and readiness is noticed without waiting out the rest of a period.
 */
async function runProbe(
  name: string,
  dir: string,
  state: ServiceState,
  signal: AbortSignal,
  log: StepLog,
  launcher?: ServiceLauncher,
): Promise<void> {
  const probe = state.config.startup_probe!;
  const run = [probe.run.path, ...probe.run.args];
  const command = launcher
    ? launcher.probe(dir, run)
    : inNetwork(
        state.netns ?? state.address.network,
        state.runAs ? asUser(state.runAs.ids, run, state.runAs.groups, state.runAs.loader) : run,
        state.hosts,
      );
  const ports = Object.values(state.address.ports);
  let portsUp = false;
  const opened = portsOpen(state.address, signal).then(() => {
    portsUp = true;
  });
  // A failed helper must not leave the probe waiting: the probe then runs every period as usual.
  opened.catch(() => {
    portsUp = true;
  });
  const periodMs = probe.periodSeconds * 1000;
  let last = '';
  for (let failures = 0; ;) {
    let started = Date.now();
    if (!portsUp) {
      await Promise.race([opened.catch(() => undefined), delay(periodMs, undefined, { signal }).catch(() => undefined)]);
      if (signal.aborted) return;
      if (!portsUp) {
        failures += 1;
        last = `port${ports.length > 1 ? 's' : ''} ${ports.join(', ')} of ${state.address.host} not accepting connections yet`;
        if (failures >= probe.failureThreshold) break;
        continue;
      }
      started = Date.now();
    }
    const result = await runCommand(command[0], command.slice(1), {
      env: state.env,
      cwd: path.join(state.root, 'work'),
      timeoutMs: probe.timeoutSeconds * 1000,
      signal,
    }).catch((err: Error): RunResult => ({ code: null, signal: null, stdout: '', stderr: err.message, timedOut: false }));
    if (signal.aborted) return;
    if (result.code === 0) return;
    const why = result.timedOut ? `timed out after ${probe.timeoutSeconds}s` : `exited with ${result.code ?? result.signal}`;
    last = `${result.stdout}${result.stderr}`.trim() || why;
    failures += 1;
    if (failures >= probe.failureThreshold) break;
    await delay(Math.max(0, periodMs - (Date.now() - started)), undefined, { signal }).catch(() => undefined);
  }
  const message = log.redact(
    `service ${name}: startup probe \`${[probe.run.path, ...probe.run.args].join(' ')}\` failed ${probe.failureThreshold} times` +
      ` (every ${probe.periodSeconds}s); its last output: ${last || '(none)'}\nthe service's last lines:\n${await tail(dir)}`,
  );
  await log.note(message).catch(() => undefined);
  throw new ServiceFailed(message);
}

/** Streams the service's output until it ends; stopService ends it at teardown. */
export async function superviseLocalService(deps: ActivityDeps, req: SuperviseServiceRequest): Promise<{ exitCode?: number }> {
  const ctx = Context.current();
  const dir = serviceDir(deps.home, req);
  const log = serviceLog(deps, req, dir, (ctx.info.heartbeatDetails as ServiceLogOffsets | undefined) ?? req.offsets);
  const { proc } = await attached(dir, req.name);
  let cancelled = false;
  ctx.cancelled.catch(() => {
    cancelled = true;
  });
  let pollMs = WATCH_MS;
  for (;;) {
    const sent = await log.drain().catch(() => false);
    ctx.heartbeat(log.offsets);
    const code = await exitStatus(dir);
    if (code !== undefined || !(await isAlive(proc))) {
      reapGroup(proc);
      await log.drain(true).catch(() => false);
      return { exitCode: code };
    }
    if (cancelled) {
      const handover = handedOver(ctx);
      if (handover) throw handover;
      await terminate(proc, req.gracePeriodMs);
      await log.drain(true).catch(() => false);
      return {};
    }
    pollMs = sent ? WATCH_MS : Math.min(500, pollMs * 2);
    await delay(pollMs);
  }
}

/** SIGTERM to the service's process group, SIGKILL after its grace period; idempotent. */
export async function stopLocalService(deps: ActivityDeps, req: StopServiceRequest, launcher?: ServiceLauncher): Promise<void> {
  const dir = serviceDir(deps.home, req);
  const proc = await findProcess(dir);
  const state = await readState(dir);
  if (proc && (await isAlive(proc))) {
    const log = serviceLog(deps, req, dir, undefined, 'stop');
    await log.note(`stopping service ${req.name}: SIGTERM, SIGKILL after ${req.gracePeriodMs / 1000}s`).catch(() => undefined);
    const how = await heartbeating(
      () => terminate(proc, req.gracePeriodMs),
      () => undefined,
    );
    await log.note(how === 'killed' ? `service ${req.name} killed (SIGKILL)` : `service ${req.name} stopped`).catch(() => undefined);
  } else if (proc) {
    // The main process ended; whatever it left in its group goes with it.
    reapGroup(proc);
  }
  // Its namespace goes with it, and whatever still ran there (a daemon outside its process group).
  await detachService(req);
  await launcher?.stopped(dir);
  await unmountUnder(state?.root ?? dir);
  if (state && state.root !== dir) await fs.rm(state.root, { recursive: true, force: true });
}
