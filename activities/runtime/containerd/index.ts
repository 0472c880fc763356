// The containerd runtime: every task a container made from its image by containerd + crun or runc
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
import { BUILD_LABEL, Ctr } from './ctr';
import { ImageStore } from './image';
import { containerServices } from './service';
import { mountsUnder, unmountAll } from './rootfs';
import { findOrStartContainerTask } from './task';
import { ContainerdApi, isNotFound } from './api';
import { chooseOciRuntime, type OciRuntimeChoice } from './oci-runtime';

/** How long the build's end waits for a killed task to stop before deleting it. */
const KILL_WAIT_MS = 5_000;

export interface ContainerdRuntimeOptions {
  /** containerd's socket */
  socket: string;
  /** registry mirrors: containerd's hosts.toml per registry */
  hostsDir?: string;
  defaultImage?: string;
  /** the OCI runtime the shim runs: auto (crun where it can run, else runc), runc or crun */
  ociRuntime?: OciRuntimeChoice;
}

export function containerdRuntime(deps: ActivityDeps, opts: ContainerdRuntimeOptions): Runtime {
  warmUpSpawner();
  const ctr = new Ctr({ socket: opts.socket, hostsDir: opts.hostsDir });
  const oci = chooseOciRuntime(opts.ociRuntime ?? 'auto');
  deps.log.info({ ociRuntime: oci.name, why: oci.why }, `containers run with ${oci.name}`);
  const cx = containerdContext(deps, ctr, new ContainerdApi(opts.socket, oci.binary), new ImageStore(ctr), opts.defaultImage);
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
      await removeBuildContainers(cx.api, deps.home, req.buildId);
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
  return async (buildId) => {
    // A connection per pass: `causeway reconcile` ends when its work is done.
    const api = new ContainerdApi(opts.socket);
    try {
      await removeBuildContainers(api, home, buildId);
    } finally {
      api.close();
    }
  };
}

/**
 * Everything of the build's in containerd and on this host: its containers (killed), the
 * rootfs mounts in its directory, their snapshots and cgroups. Idempotent; finishBuild and the
 * reconciler call it. Through the API: a `ctr` process per call cost the build's end ~190 ms at load 10.
 */
export async function removeBuildContainers(api: ContainerdApi, home: string, buildId: string): Promise<string[]> {
  const ids = await api.listContainers(BUILD_LABEL, buildId);
  for (const id of ids) {
    await api.killTask(id, 'SIGKILL').catch(() => undefined);
    // Deleted once stopped: a task killed a moment ago is still running for containerd.
    await api.waitTask(id, AbortSignal.timeout(KILL_WAIT_MS)).catch(() => undefined);
    await api.deleteTask(id).catch(ignoreNotFound);
    await api.deleteContainer(id).catch(ignoreNotFound);
    // The keeper's cgroup: a step's goes with its snapshot below.
    await removeCgroups(id);
  }
  await unmountAll(await mountsUnder(paths.build(home, buildId)));
  for (const key of await api.listSnapshots(BUILD_LABEL, buildId)) {
    await api.removeSnapshot(key).catch(ignoreNotFound);
    await removeCgroups(key);
  }
  return ids;
}

function ignoreNotFound(err: unknown): void {
  if (!isNotFound(err)) throw err;
}
