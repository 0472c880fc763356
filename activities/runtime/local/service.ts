// The local runtime's services: a service's lifecycle as a detached process (start in its own
// network namespace, supervision, SIGTERM/SIGKILL stop, handover on worker shutdown); readiness
// is service-readiness.ts's, the state all of them share service-state.ts's.
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import { interpolateServices, serviceEnv, type ServiceAddress } from '../../../common/services';
import { safeJoin } from '../../artifacts';
import type { ActivityDeps } from '../../deps';
import { handedOver, ServiceFailed } from '../../errors';
import { heartbeating } from '../../heartbeat';
import { mapServiceInputs } from '../../step/service-inputs';
import type { ServiceLogOffsets, StopServiceRequest, SuperviseServiceRequest } from '../../types';
import type { ResolvedServiceRequest } from '../types';
import { placeInputs, unmountUnder } from './inputs';
import { attachService, detachService, inNetwork, serviceScope, writeHosts } from './network';
import { startProcess } from './process';
import {
  attached,
  findRun,
  processRun,
  readState,
  serviceDir,
  serviceLog,
  STATE_FILE,
  WATCH_MS,
  type ServiceLauncher,
  type ServiceRun,
  type ServiceState,
} from './service-state';
import { buildUser, canIsolate, notIsolatedNote, openBuildDir, stepPath } from './isolation';
import { asUser, chownTree, splitLoaderEnv, userEnv, userIds, type UserIds } from './users';

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
      if (state && (await findRun(dir, launcher))) return { address: state.address, offsets: log.offsets };

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
      let started: ServiceRun;
      if (launcher) {
        await launcher.prepare({ req, dir, work, config, env, netns: net.netns, hosts, note: (t) => log.noteLater(t) });
        started = await launcher.start(dir, req.buildId);
      } else {
        started = processRun(
          await startProcess({
            dir,
            cwd: safeJoin(work, config.run.dir ?? '.'),
            command: inNetwork(net.netns, runAs ? asUser(runAs.ids, run, runAs.groups, runAs.loader) : run, hosts),
            env,
          }),
        );
      }
      // Notes after the start, and not waited for: neither the service nor its probe waits for
      // NATS. The probe sends the service's output from the offsets returned here.
      log.noteLater(net.note);
      if (!launcher && (config.image_resource || req.spec.image))
        log.noteLater('the local runtime runs this service on the host, without an image (image_resource/image is ignored)');
      const listed = Object.entries(address.ports).map(([n, p]) => `${n} ${p}`);
      log.noteLater(
        `service ${req.name} started (${started.what}) on ${address.host}${listed.length ? `, ports: ${listed.join(', ')}` : ''}`,
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

/** Streams the service's output until it ends; stopService ends it at teardown. */
export async function superviseLocalService(
  deps: ActivityDeps,
  req: SuperviseServiceRequest,
  launcher?: ServiceLauncher,
): Promise<{ exitCode?: number }> {
  const ctx = Context.current();
  const dir = serviceDir(deps.home, req);
  const log = serviceLog(deps, req, dir, (ctx.info.heartbeatDetails as ServiceLogOffsets | undefined) ?? req.offsets);
  const { run } = await attached(dir, req.name, launcher);
  let cancelled = false;
  ctx.cancelled.catch(() => {
    cancelled = true;
  });
  let pollMs = WATCH_MS;
  for (;;) {
    const sent = await log.drain().catch(() => false);
    ctx.heartbeat(log.offsets);
    const code = await run.exitStatus();
    if (code !== undefined || !(await run.alive())) {
      run.reap();
      await log.drain(true).catch(() => false);
      return { exitCode: code ?? (await run.exitStatus()) };
    }
    if (cancelled) {
      const handover = handedOver(ctx.cancellationDetails);
      if (handover) throw handover;
      await run.terminate(req.gracePeriodMs);
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
  const run = await findRun(dir, launcher);
  const state = await readState(dir);
  if (run && (await run.alive())) {
    const log = serviceLog(deps, req, dir, undefined, 'stop');
    await log.note(`stopping service ${req.name}: SIGTERM, SIGKILL after ${req.gracePeriodMs / 1000}s`).catch(() => undefined);
    const how = await heartbeating(
      () => run.terminate(req.gracePeriodMs),
      () => undefined,
    );
    await log.note(how === 'killed' ? `service ${req.name} killed (SIGKILL)` : `service ${req.name} stopped`).catch(() => undefined);
  } else if (run) {
    // The main process ended; whatever it left in its group goes with it.
    run.reap();
  }
  // Its namespace goes with it, and whatever still ran there (a daemon outside its process group).
  await detachService(req);
  await launcher?.stopped(dir);
  await unmountUnder(state?.root ?? dir);
  if (state && state.root !== dir) await fs.rm(state.root, { recursive: true, force: true });
}
