// A task step as a containerd container, through containerd's API (api.ts). Idempotent by name:
// the container id and the step's directory derive from build, run, step and attempt. The
// container's shim holds it and writes its stdout and stderr to files in the step's directory, so
// a worker killed meanwhile leaves it running, and its retried activity finds the task by its id
// and waits for it again; the exit status is written to the step's directory before the task goes.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { serviceEnv } from '../../../common/services';
import type { TaskConfig, TaskStep } from '../../../schemas/compiled';
import { safeJoin } from '../../artifacts';
import { paths } from '../../deps';
import { StepErrored } from '../../errors';
import { asPermanent } from '../../permanent';
import type { RunTaskRequest } from '../../types';
import { ownTree } from '../local/inputs';
import { canIsolate, readyBuildUser } from '../local/isolation';
import { netnsPath, writeHosts } from '../local/network';
import { exitStatus, FILES } from '../local/process';
import { findOrStartHostTask, placeTaskFiles, readTaskLogs, runDir } from '../local/host-task';
import type { ResolvedTask, StepIo, TaskExit, TaskHandle, TaskSignal } from '../types';
import { ContainerdApiError, isNotFound, TaskStatus } from './api';
import { cgroupsPath, limitMemory, wasOomKilled } from './cgroup';
import { BUILD_LABEL } from './ctr';
import {
  BUILD_ROOT,
  cleanUpContainer,
  containerEnv,
  DEFAULT_PATH,
  META_FILE,
  mountRoot,
  readMeta,
  removeContainer,
  resolveImage,
  SPEC_FILE,
  userInImage,
  type ContainerMeta,
} from './container';
import { canIdmap, idmapWork, ownRootsFiles } from './idmap';
import { keeperId } from './keeper';
import { closeToOthers } from './rootfs';
import { StepClock } from './phases';
import { containerSpec, type BindMount, type OciSpec } from './spec';
import type { ContainerdContext } from './context';

/** The container's id: from build, run, step and attempt, within containerd's 76 characters. */
export function containerId(req: Pick<RunTaskRequest, 'buildId' | 'runId' | 'runKey'> & { stepId: string }): string {
  return `cw-${createHash('sha256').update(`${req.buildId}/${req.runId}/${req.stepId}/${req.runKey}`).digest('hex').slice(0, 32)}`;
}

export function findOrStartContainerTask(cx: ContainerdContext, task: ResolvedTask, io: StepIo): Promise<TaskHandle> {
  const { req } = task;
  const { step } = req;
  const id = containerId({ ...req, stepId: step.id });
  const clock = new StepClock();
  return findOrStartHostTask<ContainerMeta>(cx.deps, task, {
    find: async (dir) => {
      const found = await findTask(cx, dir, id);
      clock.mark('find');
      return found;
    },
    start: (dir) => {
      // The keeper starts (the build's first step) while this step prepares.
      const group = cx.shimGroup(req.buildId);
      group.catch(() => undefined);
      return prepare(cx, task, dir, id, io, keeperId(req.buildId), clock)
        .then(async ({ meta, spec, chainId }) => {
          await group;
          clock.mark('keeper');
          await startTask(cx, req.buildId, dir, meta, spec, clock);
          // The build's next task from this image finds its root ready (spare.ts).
          if (chainId) cx.spares.refill(req.buildId, chainId);
          return meta;
        })
        .catch(async (err: unknown) => {
          await removeContainer(cx, id);
          await cleanUpContainer(cx, dir).catch(() => undefined);
          if (err instanceof ContainerdApiError)
            err = new StepErrored(`task ${step.task}: containerd could not run the container: ${err.message}`);
          throw asPermanent(err, `task ${step.task}`);
        });
    },
    handle: (meta, dir, reattached) => containerHandle(cx, req.buildId, meta, dir, reattached, io, clock),
  });
}

/** What an earlier attempt started: its task (running or ended) in containerd, or its recorded exit status. */
async function findTask(cx: ContainerdContext, dir: string, id: string): Promise<ContainerMeta | undefined> {
  const meta = await readMeta(dir);
  if (meta?.id !== id) return undefined;
  if ((await exitStatus(dir)) !== undefined) return meta;
  try {
    const { status } = await cx.api.getTask(id);
    // Created but not started: the worker died between the two calls.
    if (status === TaskStatus.created) await cx.api.startTask(id);
    return meta;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** The container and its task, from the spec prepare made; its output goes to the step's directory (prepare made the files). */
async function startTask(
  cx: ContainerdContext,
  buildId: string,
  dir: string,
  meta: ContainerMeta,
  spec: OciSpec,
  clock: StepClock,
): Promise<void> {
  await cx.api.createContainer(meta.id, spec, { [BUILD_LABEL]: buildId });
  clock.mark('container create');
  await cx.api.createTask(meta.id, path.join(dir, FILES.stdout), path.join(dir, FILES.stderr));
  clock.mark('task create');
  await cx.api.startTask(meta.id);
  clock.mark('start');
}

function ignoreNotFound(err: unknown): void {
  if (!isNotFound(err)) throw err;
}

async function prepare(
  cx: ContainerdContext,
  task: ResolvedTask,
  dir: string,
  id: string,
  io: StepIo,
  shimGroup: string,
  clock: StepClock,
): Promise<{ meta: ContainerMeta; spec: OciSpec; chainId?: string }> {
  const { req } = task;
  const { step } = req;
  const { config, inputs } = await task.resolve();
  clock.mark('config');
  // Whatever an interrupted attempt left (a container, a mount, a snapshot, a cgroup) goes first.
  // Synchronous checks: a first attempt finds no directory, and each thread-pool round trip
  // waited for a CPU on a loaded machine.
  if (existsSync(dir)) {
    if (await readMeta(dir)) await removeContainer(cx, id);
    await cleanUpContainer(cx, dir);
    await fs.rm(dir, { recursive: true, force: true });
  }
  const work = path.join(dir, 'work');
  mkdirSync(work, { recursive: true });
  // A plain path that is not a fifo is a file the shim opens for appending (it creates none).
  for (const f of [FILES.stdout, FILES.stderr]) closeSync(openSync(path.join(dir, f), 'a'));
  clock.mark('step dir');
  const { note } = io;

  const image = await resolveImage(cx, `task ${step.task}`, { ...config, image: step.image }, req.artifacts, note);
  clock.mark('image');
  const root = await mountRoot(cx, image, req.buildId, id, dir, note, { spare: true });
  clock.mark('root');
  const target = root.rootfs.target;
  // Written before anything else can fail: a failed start removes what this says.
  let meta: ContainerMeta = { id, outputs: {}, rootfs: root.rootfs, memoryLimited: false };
  await fs.writeFile(path.join(dir, META_FILE), JSON.stringify(meta));
  clock.mark('meta');

  // Each input a copy-on-write view of its producer's output (the local runtime's), seen in the
  // container through the rbind of the working directory: one mount instead of a copy.
  // Idmapped (idmap.ts): the build's files, a host-run get's among them, are root's in the
  // container, and what root writes there is the build's uid's on the host.
  const build = canIdmap() && canIsolate() ? await readyBuildUser(cx.deps.home, req.buildId, req.runId) : undefined;
  clock.mark('build uid');
  const idmapped = build ? await idmapWork(dir, work, build) : undefined;
  clock.mark('idmap mount');
  const seen = idmapped?.work ?? work;
  const { outputs } = await placeTaskFiles({
    dir,
    work,
    step,
    config,
    inputs,
    worker: cx.deps.workerName,
    runtime: 'containerd',
    layers: idmapped?.views,
  });
  meta = { ...meta, outputs };
  clock.mark('inputs');
  const workDir = `${BUILD_ROOT}/${id.slice(3, 11)}`;
  const mounts: BindMount[] = [{ source: seen, destination: workDir }];
  for (const cache of config.caches) {
    const source = safeJoin(paths.cache(cx.deps.home, req.plan, step.id, req.pipeline), cache.path);
    // Root's only: what a root container writes there (a setuid-root file) is root's on disk, and
    // the container reaches it through its bind mount.
    await closeToOthers(source);
    await fs.mkdir(safeJoin(work, cache.path), { recursive: true });
    mounts.push({ source, destination: path.posix.join(workDir, path.posix.normalize(cache.path)) });
  }

  const user = await userInImage(root, config.run.user, `task ${step.task}`);
  // What the worker made there is the build's (root's in the container; 0 on disk is no one's there).
  if (build) await ownRootsFiles(work, build);
  // Only what is not theirs yet: a chown through an input's view would copy the file up.
  if (user.uid !== 0) await ownTree(seen, user);
  clock.mark('user');

  const env = containerEnv(
    root,
    user,
    {
      ...serviceEnv(req.services ?? {}),
      ...config.params,
      ...step.params,
    },
    { idmapped: idmapped !== undefined },
  );
  const cwd = path.posix.join(workDir, config.run.dir ?? '.');
  await checkRunnable(step, config, seen, target, env.PATH, cwd, workDir);
  clock.mark('check');

  // A step with services joins the build's network namespace and sees them by name.
  const network = Object.values(req.services ?? {}).find((s) => s.network)?.network;
  if (network) {
    const hosts = path.join(dir, 'hosts');
    await writeHosts(hosts, req.services ?? {});
    mounts.push({ source: hosts, destination: '/etc/hosts' });
    note(`this step runs in network namespace ${network}, on the bridge of its build's services (reachable by name; no outside access)`);
  }

  // An image resource type's scripts fetch from their source: the worker's network and name
  // resolution, as the host types' scripts have them (docs/containerd.md says what it reaches).
  const hostNetwork = !network && req.resourceContainer === true;
  if (hostNetwork) {
    const files = ['/etc/resolv.conf', '/etc/hosts'];
    const present = await Promise.all(files.map((f) => fs.stat(f).catch(() => undefined)));
    for (const [i, file] of files.entries()) if (present[i]?.isFile()) mounts.push({ source: file, destination: file, readonly: true });
    note("a resource type's container: it uses the worker's network");
  }

  const limits = step.containerLimits ?? config.container_limits;
  if (limits?.memory) {
    note(await limitMemory(id, limits.memory));
    meta = { ...meta, memoryLimited: true };
  }
  const spec = containerSpec(await cx.baseSpec(), {
    rootfs: target,
    hostname: id.slice(0, 15),
    args: [config.run.path, ...config.run.args],
    env,
    cwd,
    user,
    mounts,
    privileged: step.privileged,
    hostCapabilities: await cx.hostCapabilities(),
    cpuShares: limits?.cpu,
    cgroupsPath: cgroupsPath(id),
    netns: network ? netnsPath(network) : undefined,
    shimGroup,
    hostNetwork,
  });
  if (root.workingDir && config.run.dir === undefined)
    note(`the image's working directory ${root.workingDir} is not used: tasks run in their build directory`);
  // Kept for the record (what the container ran); the task is created from `spec` itself.
  await Promise.all([
    fs.writeFile(path.join(dir, SPEC_FILE), JSON.stringify(spec)),
    fs.writeFile(path.join(dir, META_FILE), JSON.stringify(meta)),
  ]);
  clock.mark('spec');
  return { meta, spec, chainId: 'chainId' in image ? image.chainId : undefined };
}

/**
 * A missing run.dir or run.path is a configuration error, as on the local runtime: the image's
 * root is mounted here, so the executable is looked for where the container will look.
 */
async function checkRunnable(
  step: TaskStep,
  config: TaskConfig,
  work: string,
  rootfs: string,
  searchPath: string | undefined,
  cwd: string,
  workDir: string,
): Promise<void> {
  await runDir(step, config, work);
  const cmd = config.run.path;
  const inside = cmd.includes('/')
    ? [path.posix.resolve(cwd, cmd)]
    : (searchPath ?? DEFAULT_PATH)
        .split(':')
        .filter(Boolean)
        .map((d) => path.posix.join(d, cmd));
  for (const p of inside) {
    const host = p === workDir || p.startsWith(`${workDir}/`) ? path.join(work, path.posix.relative(workDir, p)) : path.join(rootfs, p);
    // lstat: a symlink in the image may point anywhere on its own root, not the host's.
    if (
      await fs.lstat(host).then(
        (st) => st.isFile() || st.isSymbolicLink(),
        () => false,
      )
    )
      return;
  }
  throw new StepErrored(
    `task ${step.task}: run.path ${cmd}: no such executable in the image` +
      (cmd.includes('/') ? ` (looked at ${inside[0]})` : ` on PATH ${searchPath ?? DEFAULT_PATH}`),
  );
}

function containerHandle(
  cx: ContainerdContext,
  buildId: string,
  meta: ContainerMeta,
  dir: string,
  reattached: boolean,
  io: StepIo,
  clock: StepClock,
): TaskHandle {
  let signalled: TaskSignal | undefined;
  const wait = async (stop: AbortSignal): Promise<TaskExit | undefined> => {
    // Only an earlier attempt can have recorded one: a task started now has its step's directory new.
    let exitCode = reattached ? await exitStatus(dir) : undefined;
    if (exitCode === undefined) {
      try {
        exitCode = await cx.api.waitTask(meta.id, stop);
        clock.mark('run + exit');
      } catch (err) {
        // Handed over: the container, its root and its cgroup stay for the next worker.
        if (stop.aborted) return undefined;
        throw err;
      }
      // Recorded before the task goes: a retry after this point finds the status, not a task.
      await fs.writeFile(path.join(dir, FILES.exit), `${exitCode}\n`);
    }
    try {
      if (!signalled && meta.memoryLimited && (await wasOomKilled(meta.id, exitCode)))
        io.note('killed: the task exceeded container_limits.memory (OOM)');
    } finally {
      clock.mark('exit status');
      clock.log(cx.deps.log, 'path', meta.id);
      cx.later(buildId, async () => {
        const removal = new StepClock();
        await cx.api.deleteTask(meta.id).catch(ignoreNotFound);
        removal.mark('task delete');
        await cx.api.deleteContainer(meta.id).catch(ignoreNotFound);
        removal.mark('container delete');
        await cleanUpContainer(cx, dir, removal);
        removal.log(cx.deps.log, 'removal', meta.id);
      });
    }
    return { exitCode, outputs: meta.outputs };
  };
  return {
    reattached,
    wait,
    readLogs: (from) => readTaskLogs(dir, from),
    signal: async (signal) => {
      signalled = signal;
      // An ended task (or one already removed) has nothing left to signal.
      await cx.api.killTask(meta.id, signal).catch((err: unknown) => {
        if (!(err instanceof ContainerdApiError)) throw err;
      });
    },
  };
}
