import { accessSync, chownSync, constants as fsConstants, mkdirSync, statSync } from 'node:fs';
import fs from 'node:fs/promises';
import os, { constants as osConstants } from 'node:os';
import path from 'node:path';
import type { TaskConfig, TaskStep } from '../../../schemas/compiled';
import { serviceEnv } from '../../../common/services';
import { safeJoin } from '../../artifacts';
import { paths, type ActivityDeps } from '../../deps';
import { StepErrored } from '../../errors';
import { asPermanent } from '../../permanent';
import type { Artifacts } from '../../types';
import type { ResolvedTask, StepIo, TaskExit, TaskHandle, TaskSignal } from '../types';
import { findOrStartHostTask, placeTaskFiles, readTaskLogs, runDir } from './host-task';
import { ownTree, unmountUnder } from './inputs';
import { inNetwork, writeHosts } from './network';
import { applyMemoryLimit, removeCgroup, wasOomKilled, type MemoryLimit } from './limits';
import {
  exitStatus,
  exitStatusOf,
  FILES,
  findProcess,
  groupAlive,
  isAlive,
  reapGroup,
  signalGroup,
  startProcess,
  waitExit,
  type StepProcess,
} from './process';
import { canIsolate, notIsolatedNote, readyBuildUser, stepPath } from './isolation';
import { asUser, chownTree, splitLoaderEnv, userEnv, userIds, type UserIds } from './users';

/** where a step started before its spec moved into the `starting` marker keeps it */
const LEGACY_SPEC_FILE = 'spec.json';
/** how often a re-attached step's process (not this worker's child, whose exit is an event) is looked at, at first and at most */
const POLL_MIN_MS = 10;
const POLL_MAX_MS = 250;

interface Spec {
  config: TaskConfig;
  outputs: Artifacts;
  memory?: MemoryLimit;
  /** the inputs mounted as copy-on-write views, which the step's end unmounts */
  views?: string[];
}

/** Finds or starts a task as a detached process on this host (findOrStartHostTask). */
export function findOrStartLocalTask(deps: ActivityDeps, task: ResolvedTask, io: StepIo): Promise<TaskHandle> {
  const { req } = task;
  const { step } = req;
  return findOrStartHostTask<{ proc: StepProcess; spec: Spec }>(deps, task, {
    async find(dir) {
      const proc = await findProcess(dir);
      if (!proc) return undefined;
      // The spec is the `starting` marker's content; a step a worker before it started has it in spec.json.
      const text = await fs
        .readFile(path.join(dir, LEGACY_SPEC_FILE), 'utf8')
        .catch(() => fs.readFile(path.join(dir, FILES.starting), 'utf8'));
      return { proc, spec: JSON.parse(text) as Spec };
    },
    async start(dir) {
      // The build's own uid (when the worker is root): its steps cannot touch other builds or the worker.
      const user = canIsolate() ? await readyBuildUser(deps.home, req.buildId, req.runId) : undefined;
      if (!user) io.note(notIsolatedNote());
      const spec = await prepare(deps, task, dir, io, user).catch(async (err: unknown) => {
        await unmountUnder(dir);
        throw asPermanent(err, `task ${step.task}`);
      });
      // A step with services runs in the build's network namespace, where its services are.
      const network = Object.values(req.services ?? {}).find((s) => s.network)?.network;
      const env = { ...serviceEnv(req.services ?? {}), ...envFor(step, spec.config, dir) };
      // Started by root helpers: the loader's variables reach only the step's own command.
      const split = user ? splitLoaderEnv(env) : { env, loader: {} };
      const run = await commandFor(spec.config, dir, user, split.loader);
      // It reaches its services by name too: an /etc/hosts of its own lists them.
      const hosts = network ? path.join(dir, 'hosts') : undefined;
      if (hosts) await writeHosts(hosts, req.services ?? {});
      const proc = await startProcess({
        dir,
        cwd: safeJoin(path.join(dir, 'work'), spec.config.run.dir ?? '.'),
        command: inNetwork(network, run.command, hosts),
        env: { ...split.env, ...run.env },
        cgroupProcs: spec.memory?.procsFile,
        prelude: spec.memory?.prelude,
        // What a re-attaching attempt needs, in the marker: one file fewer to create per step.
        marker: JSON.stringify(spec),
      }).catch(async (err: unknown) => {
        await unmountUnder(dir);
        throw asPermanent(err, `task ${step.task}: cannot start ${spec.config.run.path}`);
      });
      if (network)
        io.note(
          `this step runs in network namespace ${network}, on the bridge of its build's services (reachable by name; no outside access)`,
        );
      return { proc, spec };
    },
    handle: ({ proc, spec }, dir, reattached) => localHandle(proc, spec, dir, reattached, io),
  });
}

function localHandle(proc: StepProcess, spec: Spec, dir: string, reattached: boolean, io: StepIo): TaskHandle {
  let signalled: TaskSignal | undefined;
  /** The exit status once the process has ended. */
  const ended = async (): Promise<number | undefined> => {
    const code = await exitStatusOf(proc);
    if (code !== undefined) return code;
    if (await isAlive(proc)) return undefined;
    // The wrapper writes the exit file just before it exits; look once more.
    const late = await exitStatus(dir);
    if (late !== undefined) return late;
    // A signal to the process group ends the wrapper too, before it can write a status; the
    // step has ended when its whole group has (a task may trap SIGTERM to clean up).
    if (signalled) return (await groupAlive(proc.pid)) ? undefined : 128 + osConstants.signals[signalled];
    throw new Error(`step process ${proc.pid} ended without an exit status (killed from outside?)`);
  };
  const wait = async (stop: AbortSignal): Promise<TaskExit | undefined> => {
    let exitCode: number | undefined;
    try {
      // A process this activity just started has ended, if at all, by its exit event.
      if (proc.child) await waitExit(proc, POLL_MIN_MS);
      for (let pollMs = POLL_MIN_MS; exitCode === undefined; pollMs = Math.min(POLL_MAX_MS, pollMs * 2)) {
        // Handed over: the process and its cgroup stay for the next worker.
        if (stop.aborted) return undefined;
        exitCode = await ended();
        if (exitCode === undefined) await waitExit(proc, pollMs);
      }
    } catch (err) {
      if (spec.memory) await removeCgroup(spec.memory);
      await unmountUnder(dir);
      throw err;
    }
    // Kills whatever the step left running in the background, as a container's end would.
    reapGroup(proc);
    // Its inputs' views go with it (its outputs never lie in them); a step without any pays no look at the mount table.
    if (spec.views?.length) await unmountUnder(dir);
    // An ended step's memory cgroup must go, or every step with container_limits leaks one on the host.
    if (spec.memory) {
      if (!signalled && exitCode !== 0 && (await wasOomKilled(spec.memory))) io.note('killed: the task exceeded container_limits.memory');
      await removeCgroup(spec.memory);
    }
    return { exitCode, outputs: spec.outputs };
  };
  return {
    reattached,
    wait,
    readLogs: (from) => readTaskLogs(dir, from),
    signal: async (signal) => {
      signalled ??= signal;
      signalGroup(proc.pid, signal);
    },
  };
}

async function prepare(deps: ActivityDeps, task: ResolvedTask, dir: string, io: StepIo, user?: UserIds): Promise<Spec> {
  const { req } = task;
  const { step } = req;
  const { config, inputs } = await task.resolve();
  const work = path.join(dir, 'work');
  // mkdir says the first directory it made: unless that is the step's own (or one above it),
  // an interrupted attempt left the step's directory, and what it left needs removing.
  // The step's own directories are made synchronously: a few system calls each, where every
  // thread-pool round trip waited for a CPU on a loaded machine (bench:step-overhead).
  const made = mkdirSync(work, { recursive: true });
  if (made === undefined || made === work) {
    // Its inputs' views first: removing through them would fill their upper layers, and a mount point cannot be removed.
    await unmountUnder(dir);
    await fs.rm(dir, { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
  }
  const fresh = [path.join(dir, 'home'), path.join(dir, 'tmp')];
  for (const d of fresh) mkdirSync(d);

  if (config.image_resource || config.rootfs_uri || step.image) {
    io.note('the local runtime runs this task on the host, without an image (image_resource/image is ignored)');
  }
  if (step.privileged)
    io.note(
      user
        ? 'privileged: ignored, the local runtime runs every step as its build’s uid, without capabilities'
        : 'privileged: the local runtime runs tasks with the worker’s own privileges',
    );

  const { outputs, views } = await placeTaskFiles({ dir, work, step, config, inputs, worker: deps.workerName, runtime: 'local' });

  const caches = path.join(deps.home, 'caches');
  for (const cache of config.caches) {
    const target = safeJoin(paths.cache(deps.home, req.plan, step.id, req.pipeline), cache.path);
    await fs.mkdir(target, { recursive: true });
    if (user) {
      // A cache is its step's, across the plan's builds: the latest build's uid owns it; others cannot list caches.
      await fs.chmod(caches, 0o711);
      await chownTree(target, user);
      await fs.chmod(target, 0o700);
    }
    const at = safeJoin(work, cache.path);
    await fs.mkdir(path.dirname(at), { recursive: true });
    await fs.rm(at, { recursive: true, force: true });
    await fs.symlink(target, at);
  }

  if (user) {
    // The step's own files are the build's; the wrapper's (pid, exit, logs) stay the worker's, out of its reach.
    // home and tmp were just made, empty: no walk.
    for (const d of fresh) chownSync(d, user.uid, user.gid);
    await ownTree(work, user);
  }
  await checkRunnable(step, config, work, envFor(step, config, dir).PATH);

  const limits = step.containerLimits ?? config.container_limits;
  let memory: MemoryLimit | undefined;
  if (limits?.memory) {
    memory = await applyMemoryLimit(`${req.buildId}-${path.basename(path.dirname(dir))}-${req.runKey}-${step.id}`, limits.memory);
    io.note(memory.note);
  }

  return { config, outputs, memory, views };
}

/**
 * A missing run.dir or run.path is a configuration error: Concourse cannot start such a
 * task and the build errors. Without this check the wrapper's `cd` or the shell's
 * "not found" (exit 125/127) made it look like a task that ran and failed.
 */
async function checkRunnable(step: TaskStep, config: TaskConfig, work: string, searchPath: string): Promise<void> {
  const cwd = await runDir(step, config, work);
  const cmd = config.run.path;
  const candidates = cmd.includes('/')
    ? [path.resolve(cwd, cmd)]
    : searchPath
        .split(':')
        .filter(Boolean)
        .map((d) => path.join(d, cmd));
  for (const candidate of candidates) {
    // Looked for without an exception per PATH entry that lacks it (an async miss costs an Error
    // with its stack, which showed in the profile of many steps starting at once).
    if (!statSync(candidate, { throwIfNoEntry: false })?.isFile()) continue;
    try {
      accessSync(candidate, fsConstants.X_OK);
      return;
    } catch {
      // not executable by the worker: look further along PATH
    }
  }
  throw new StepErrored(
    `task ${step.task}: run.path ${cmd}: no such executable` + (cmd.includes('/') ? ` (looked at ${candidates[0]})` : ' on PATH'),
  );
}

/**
 * The command and the env that goes with it: as the build's uid, or as run.user when it names
 * another host user (whose files the step's then are), with the build's group to reach its
 * directory. run.user naming the worker's own user gets the build's uid when the worker is root.
 */
async function commandFor(
  config: TaskConfig,
  dir: string,
  build: UserIds | undefined,
  loader: Record<string, string>,
): Promise<{ command: string[]; env: Record<string, string> }> {
  const command = [config.run.path, ...config.run.args];
  const user = config.run.user;
  if (!user || user === os.userInfo().username) return { command: build ? asUser(build, command, [], loader) : command, env: {} };
  if (!build) {
    throw new StepErrored(
      `run.user ${user}: the worker runs as ${os.userInfo().username} and can only run tasks as another user when it is root`,
    );
  }
  try {
    const ids = await userIds(user);
    await Promise.all(['work', 'home', 'tmp'].map((d) => chownTree(path.join(dir, d), ids)));
    return { command: asUser(ids, command, [build.gid], loader), env: userEnv(user) };
  } catch (err) {
    throw new StepErrored(`run.user ${user}: ${(err as Error).message}`);
  }
}

function envFor(step: TaskStep, config: TaskConfig, dir: string): Record<string, string> {
  return {
    PATH: stepPath(),
    LANG: process.env.LANG ?? 'C.UTF-8',
    HOME: path.join(dir, 'home'),
    TMPDIR: path.join(dir, 'tmp'),
    ...config.params,
    ...step.params,
  };
}
