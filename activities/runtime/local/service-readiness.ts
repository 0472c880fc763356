// A local service's readiness: its startup_probe passes or, without one, every port accepts
// connections, tried from inside its network; the service exiting first fails it at once.
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import type { ServiceAddress } from '../../../common/services';
import { PROBE_DEFAULTS } from '../../../schemas/services';
import type { ActivityDeps } from '../../deps';
import { handedOver, ServiceFailed } from '../../errors';
import { heartbeating } from '../../heartbeat';
import type { ProbeServiceRequest, ServiceLogOffsets } from '../../types';
import { inNetwork } from './network';
import { runCommand, type RunResult } from './spawner';
import { attached, serviceDir, serviceLog, tail, WATCH_MS, type ServiceLauncher, type ServiceState } from './service-state';
import type { StepLog } from './step-log';
import { asUser } from './users';

/**
 * How often the readiness helper tries each port: a port that opens is noticed within this
 * (the target is 50 ms). Every 5 ms slowed PostgreSQL's start-up by ~250 ms on 2 CPUs (a wake-up
 * per refused connection); every 20 ms costs nothing measurable.
 */
const TCP_POLL_MS = 20;
/** without a startup_probe, how long the ports may take to open: the probe's default budget, doubled for slow CI hosts */
const PORTS_TIMEOUT_MS = 2 * PROBE_DEFAULTS.failureThreshold * PROBE_DEFAULTS.periodSeconds * 1000;

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
  const { run, state } = await attached(dir, req.name, launcher);
  return heartbeating(
    async () => {
      const stop = new AbortController();
      // One drain at a time: two reading from the same offset could send chunks of different
      // sizes under one message id, and JetStream would keep only the first.
      let draining: Promise<unknown> = Promise.resolve();
      const drain = (final = false) => (draining = draining.then(() => log.drain(final).catch(() => false)));
      const exited = async (): Promise<never> => {
        for (;;) {
          let code = await run.exitStatus();
          if (code !== undefined || !(await run.alive())) {
            // The wrapper writes the exit file just before it exits: look once more.
            code ??= await run.exitStatus();
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
          throw handedOver(ctx.cancellationDetails) ?? err;
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
