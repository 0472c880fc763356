// The containerd runtime: every task a container made from its image by containerd + runc
// (docs/containerd.md); artifacts are directories on this worker's disk, as on the local runtime.
import { finishBuild } from '../../build';
import { readDirArtifactFile } from '../local/host-task';
import { paths, type ActivityDeps } from '../../deps';
import { canIsolate, releaseBuildUser } from '../local/isolation';
import { removeNetwork } from '../local/network';
import { startLocalService, stopLocalService, superviseLocalService } from '../local/service';
import { probeLocalService } from '../local/service-readiness';
import { warmUpSpawner } from '../local/spawner';
import { findOrStartLocalTask } from '../local/task';
import type { Runtime } from '../types';
import { removeCgroups } from './cgroup';
import { StepClock } from './phases';
import { containerdContext } from './context';
import { BUILD_LABEL, Ctr, CtrError } from './ctr';
import { ImageStore } from './image';
import { containerServices } from './service';
import { mountsUnder, unmountRootfs } from './rootfs';
import { findOrStartContainerTask } from './task';
import { ContainerdApi } from './api';
import type { TaskSignal } from '../types';

export interface ContainerdRuntimeOptions {
  /** containerd's socket */
  socket: string;
  /** registry mirrors: containerd's hosts.toml per registry */
  hostsDir?: string;
  defaultImage?: string;
}

export function containerdRuntime(deps: ActivityDeps, opts: ContainerdRuntimeOptions): Runtime {
  warmUpSpawner();
  const ctr = new Ctr({ socket: opts.socket, hostsDir: opts.hostsDir });
  const cx = containerdContext(deps, ctr, new ContainerdApi(opts.socket), new ImageStore(ctr), opts.defaultImage);
  const launcher = containerServices(cx);
  return {
    releasesArtifacts: false,
    runsContainers: true,
    runsHostScripts: true,
    // Base resource types' scripts need the worker's own tools (node, git, skopeo, umoci), which
    // no task image has: they run as the local runtime's host processes, under the build's uid.
    findOrStartTask: (task, io) => (task.req.onHost ? findOrStartLocalTask(deps, task, io) : findOrStartContainerTask(cx, task, io)),
    readArtifactFile: readDirArtifactFile('containerd'),
    releaseArtifacts: async () => undefined,
    finishBuild: async (req) => {
      const clock = new StepClock();
      await cx.settle(req.buildId);
      clock.mark('settle');
      await removeBuildContainers(ctr, deps.home, req.buildId);
      clock.mark('containers');
      cx.spares.forget(req.buildId);
      await removeNetwork(req.buildId);
      clock.mark('network');
      await finishBuild(deps, req);
      clock.mark('finish');
      // The build's uid ran its resource scripts on the host: given back as the local runtime does.
      if (canIsolate()) await releaseBuildUser(deps.home, req.buildId);
      clock.mark('release');
      clock.log(deps.log, 'build end', req.buildId);
    },
    services: {
      startService: (req) => startLocalService(deps, req, launcher),
      probeService: (req) => probeLocalService(deps, req, launcher),
      superviseService: (req) => superviseLocalService(deps, req, launcher),
      stopService: (req) => stopLocalService(deps, req, launcher),
    },
  };
}

/** The reconciler's part for a containerd worker: a closed build's containers, mounts, snapshots and cgroups. */
export function containerdLeftovers(home: string, opts: ContainerdRuntimeOptions): (buildId: string) => Promise<void> {
  const ctr = new Ctr({ socket: opts.socket, hostsDir: opts.hostsDir });
  return async (buildId) => {
    await removeBuildContainers(ctr, home, buildId);
  };
}

/**
 * Everything of the build's in containerd and on this host: its containers (killed), the
 * rootfs mounts in its directory, their snapshots and cgroups. Idempotent; finishBuild and the
 * reconciler call it.
 */
export async function removeBuildContainers(ctr: Ctr, home: string, buildId: string): Promise<string[]> {
  const ids = (await ctr.run(['containers', 'ls', '-q', `labels."${BUILD_LABEL}"==${buildId}`], `listing the containers of ${buildId}`))
    .split('\n')
    .filter(Boolean);
  for (const id of ids) {
    await signalContainer(ctr, id, 'SIGKILL');
    await ctr.run(['tasks', 'rm', '-f', id], `removing the task of ${id}`).catch(ignoreNotFound);
    await ctr.run(['containers', 'rm', id], `removing container ${id}`).catch(ignoreNotFound);
    // The keeper's cgroup: a step's goes with its snapshot below.
    await removeCgroups(id);
  }
  const dir = paths.build(home, buildId);
  for (const target of await mountsUnder(dir)) await unmountRootfs(undefined, { target });
  const snapshots = (await ctr.run(['snapshots', 'ls'], 'listing snapshots')).split('\n').slice(1);
  for (const line of snapshots) {
    const key = line.split(/\s+/)[0];
    if (!key?.startsWith('cw-')) continue;
    const info = await ctr.run(['snapshots', 'info', key], `snapshot ${key}`).catch(() => '');
    if (!info.includes(`"${BUILD_LABEL}": "${buildId}"`)) continue;
    await ctr.run(['snapshots', 'rm', key], `removing snapshot ${key}`).catch(ignoreNotFound);
    await removeCgroups(key);
  }
  return ids;
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

function ignoreNotFound(err: unknown): void {
  if (!(err instanceof CtrError && /not found/i.test(err.message))) throw err;
}
