// A task step as a containerd container. Idempotent by name: the container id and the step's
// directory derive from build, run, step and attempt, and the container runs under `ctr run`
// inside the local runtime's detached wrapper (stdout, stderr and the exit status in the step's
// directory). A worker killed meanwhile leaves it running, and its retried activity re-attaches.
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { serviceEnv } from '../../../common/services';
import type { TaskConfig, TaskStep } from '../../../schemas/compiled';
import { copyArtifact, safeJoin } from '../../artifacts';
import { paths } from '../../deps';
import { StepErrored } from '../../errors';
import { asPermanent } from '../../permanent';
import type { Artifacts, RunTaskRequest } from '../../types';
import { netnsPath, writeHosts } from '../local/network';
import { exitStatus, exitStatusOf, FILES, findProcess, isAlive, startProcess, waitExit, type StepProcess } from '../local/process';
import { readFrom } from '../local/step-log';
import type { LogPiece, ResolvedTask, StepIo, TaskExit, TaskHandle, TaskSignal } from '../types';
import { cgroupsPath, limitMemory, wasOomKilled } from './cgroup';
import { CTR_ERROR_PREFIX, CtrError, lastLine, type Ctr } from './ctr';
import {
  BUILD_ROOT,
  chownTree,
  cleanUpContainer,
  containerEnv,
  ctrEnv,
  ctrRun,
  DEFAULT_PATH,
  META_FILE,
  mountRoot,
  resolveImage,
  SPEC_FILE,
  userInImage,
  type ContainerMeta,
} from './container';
import { containerSpec } from './spec';
import type { ContainerdContext } from './context';

/** how often a re-attached step's ctr (not this worker's child, whose exit is an event) is looked at, at first and at most */
const POLL_MIN_MS = 10;
const POLL_MAX_MS = 250;
/** a signal sent while ctr is still creating the container is tried again this often, this many times */
const SIGNAL_RETRY_MS = 100;
const SIGNAL_TRIES = 50;

/** The container's id: from build, run, step and attempt, within containerd's 76 characters. */
export function containerId(req: Pick<RunTaskRequest, 'buildId' | 'runId' | 'runKey'> & { stepId: string }): string {
  return `cw-${createHash('sha256').update(`${req.buildId}/${req.runId}/${req.stepId}/${req.runKey}`).digest('hex').slice(0, 32)}`;
}

export async function findOrStartContainerTask(cx: ContainerdContext, task: ResolvedTask, io: StepIo): Promise<TaskHandle> {
  const { deps } = cx;
  const { req } = task;
  const { step } = req;
  let dir: string;
  try {
    dir = paths.step(deps.home, req.buildId, req.runId, step.id, req.runKey);
  } catch (err) {
    throw asPermanent(err, `task ${step.task}`);
  }
  let proc = await findProcess(dir);
  let meta: ContainerMeta;
  const reattached = proc !== undefined;
  if (proc) {
    meta = JSON.parse(await fs.readFile(path.join(dir, META_FILE), 'utf8')) as ContainerMeta;
    deps.log.info({ step: step.id, container: meta.id }, 're-attached to a running container');
  } else {
    const id = containerId({ ...req, stepId: step.id });
    meta = await prepare(cx, task, dir, id, io).catch(async (err: unknown) => {
      await cleanUpContainer(cx, dir).catch(() => undefined);
      throw asPermanent(err, `task ${step.task}`);
    });
    proc = await startProcess({ dir, cwd: dir, command: ctrRun(cx, req.buildId, dir, id), env: ctrEnv() }).catch((err: unknown) => {
      throw asPermanent(err, `task ${step.task}: cannot start ctr`);
    });
  }
  return containerHandle(cx, req.step, proc, meta, dir, reattached, io);
}

async function prepare(cx: ContainerdContext, task: ResolvedTask, dir: string, id: string, io: StepIo): Promise<ContainerMeta> {
  const { req } = task;
  const { step } = req;
  const { config, inputs } = await task.resolve();
  // Whatever an interrupted attempt left (a mount, a snapshot, a cgroup) goes first.
  await cleanUpContainer(cx, dir);
  await fs.rm(dir, { recursive: true, force: true });
  const work = path.join(dir, 'work');
  await fs.mkdir(work, { recursive: true });
  const { note } = io;

  const root = await mountRoot(
    cx,
    await resolveImage(cx, `task ${step.task}`, { ...config, image: step.image }, req.artifacts, note),
    req.buildId,
    id,
    dir,
    note,
  );
  const target = root.rootfs.target;
  // Written before anything else can fail: a failed start removes what this says.
  const outputs: Artifacts = {};
  let meta: ContainerMeta = { id, outputs, rootfs: root.rootfs, memoryLimited: false };
  await fs.writeFile(path.join(dir, META_FILE), JSON.stringify(meta));

  for (const input of inputs) {
    if (input.ref.kind !== 'dir')
      throw new StepErrored(
        `task ${step.task}: input ${input.source} is an output of pod ${input.ref.pod}, which the containerd runtime cannot read`,
      );
    await copyArtifact(input.ref.path, safeJoin(work, input.path));
  }
  for (const output of config.outputs) {
    const at = safeJoin(work, output.path ?? output.name);
    await fs.mkdir(at, { recursive: true });
    outputs[step.outputMapping[output.name] ?? output.name] = { kind: 'dir', worker: cx.deps.workerName, path: at };
  }
  const workDir = `${BUILD_ROOT}/${id.slice(3, 11)}`;
  const mounts = [{ source: work, destination: workDir }];
  for (const cache of config.caches) {
    const source = safeJoin(paths.cache(cx.deps.home, req.plan, step.id), cache.path);
    await fs.mkdir(source, { recursive: true });
    await fs.mkdir(safeJoin(work, cache.path), { recursive: true });
    mounts.push({ source, destination: path.posix.join(workDir, path.posix.normalize(cache.path)) });
  }

  const user = await userInImage(root, config.run.user, `task ${step.task}`);
  if (user.uid !== 0) await chownTree(work, user.uid, user.gid);

  const env = containerEnv(root, user, {
    ...serviceEnv(req.services ?? {}),
    ...config.params,
    ...step.params,
  });
  const cwd = path.posix.join(workDir, config.run.dir ?? '.');
  await checkRunnable(step, config, work, target, env.PATH, cwd, workDir);

  // A step with services joins the build's network namespace and sees them by name.
  const network = Object.values(req.services ?? {}).find((s) => s.network)?.network;
  if (network) {
    const hosts = path.join(dir, 'hosts');
    await writeHosts(hosts, req.services ?? {});
    mounts.push({ source: hosts, destination: '/etc/hosts' });
    note(`this step runs in network namespace ${network}, on the bridge of its build's services (reachable by name; no outside access)`);
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
  });
  if (root.workingDir && config.run.dir === undefined)
    note(`the image's working directory ${root.workingDir} is not used: tasks run in their build directory`);
  await fs.writeFile(path.join(dir, SPEC_FILE), JSON.stringify(spec));
  await fs.writeFile(path.join(dir, META_FILE), JSON.stringify(meta));
  return meta;
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
  const hostCwd = safeJoin(work, config.run.dir ?? '.');
  const isDir = await fs.stat(hostCwd).then(
    (st) => st.isDirectory(),
    () => false,
  );
  if (!isDir) throw new StepErrored(`task ${step.task}: run.dir ${config.run.dir}: no such directory in the task's working directory`);
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
  step: TaskStep,
  proc: StepProcess,
  meta: ContainerMeta,
  dir: string,
  reattached: boolean,
  io: StepIo,
): TaskHandle {
  let signalled: TaskSignal | undefined;
  /** The exit status once ctr has ended (the container's, which `ctr run` exits with). */
  const ended = async (): Promise<number | undefined> => {
    const code = await exitStatusOf(proc);
    if (code !== undefined) return code;
    if (await isAlive(proc)) return undefined;
    // The wrapper writes the exit file just before it exits; look once more.
    const late = await exitStatus(dir);
    if (late !== undefined) return late;
    throw new Error(`ctr of container ${meta.id} (pid ${proc.pid}) ended without an exit status (killed from outside?)`);
  };
  const wait = async (stop: AbortSignal): Promise<TaskExit | undefined> => {
    let exitCode: number | undefined;
    if (proc.child) await waitExit(proc, POLL_MIN_MS);
    for (let pollMs = POLL_MIN_MS; exitCode === undefined; pollMs = Math.min(POLL_MAX_MS, pollMs * 2)) {
      // Handed over: the container, its root and its cgroup stay for the next worker.
      if (stop.aborted) return undefined;
      exitCode = await ended();
      if (exitCode === undefined) await waitExit(proc, pollMs);
    }
    // The container is gone (`ctr run --rm`); its root, snapshot and cgroups go too.
    try {
      if (!signalled && meta.memoryLimited && (await wasOomKilled(meta.id, exitCode)))
        io.note('killed: the task exceeded container_limits.memory (OOM)');
    } finally {
      await cleanUpContainer(cx, dir);
    }
    if (exitCode !== 0 && !signalled) {
      // ctr's own failure (runc could not create the container) is not the task's exit status.
      const last = lastLine(await fs.readFile(path.join(dir, FILES.stderr), 'utf8').catch(() => ''));
      if (last.startsWith(CTR_ERROR_PREFIX))
        throw new StepErrored(`task ${step.task}: containerd could not run the container: ${last.slice(CTR_ERROR_PREFIX.length)}`);
    }
    return { exitCode, outputs: meta.outputs };
  };
  return {
    reattached,
    wait,
    readLogs: async (from) => {
      const pieces: LogPiece[] = [];
      for (const stream of ['stdout', 'stderr'] as const) {
        const offset = from[stream] ?? 0;
        const data = await readFrom(path.join(dir, FILES[stream]), offset);
        if (data) pieces.push({ stream, offset, data });
      }
      return pieces;
    },
    signal: async (signal) => {
      signalled = signal;
      // Right after the start, ctr may not have made the container's task yet: the signal waits for it.
      for (let tries = 0; !(await signalContainer(cx.ctr, meta.id, signal)) && tries < SIGNAL_TRIES && (await isAlive(proc)); tries++)
        await waitExit(proc, SIGNAL_RETRY_MS);
    },
  };
}

/** A signal to every process of the container; false when it has no task (not started yet, or over). */
export async function signalContainer(ctr: Ctr, id: string, signal: TaskSignal): Promise<boolean> {
  return ctr.run(['tasks', 'kill', '--all', '--signal', signal, id], `signalling container ${id}`).then(
    () => true,
    (err: unknown) => {
      if (!(err instanceof CtrError)) throw err;
      return false;
    },
  );
}
