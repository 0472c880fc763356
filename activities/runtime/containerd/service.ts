// Services as containers: the local runtime's service lifecycle (its own network namespace on
// the build's bridge, readiness, supervision, SIGTERM/SIGKILL stop, handover) with the process
// replaced by a container from the service's image, which joins that namespace. The container
// takes the tasks' path (task.ts): created and started through containerd's API in the build's
// shim group (keeper.ts), its root a spare one when the build has one (spare.ts), its output
// written by the shim to the service's files; the shim holds it, so a worker killed meanwhile
// leaves it running and the next attempt finds it by its id.
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ServiceFailed } from '../../errors';
import { ownTree } from '../local/inputs';
import { netnsPath } from '../local/network';
import { exitStatus, FILES } from '../local/process';
import type { ServiceLauncher, ServiceRun } from '../local/service-state';
import { ContainerdApiError, isNotFound, TaskStatus } from './api';
import { cgroupsPath, limitMemory } from './cgroup';
import {
  BUILD_ROOT,
  cleanUpContainer,
  containerEnv,
  META_FILE,
  mountRoot,
  readMeta,
  removeContainer,
  resolveImage,
  SPEC_FILE,
  userInImage,
  type ContainerMeta,
} from './container';
import type { ContainerdContext } from './context';
import { BUILD_LABEL } from './ctr';
import { keeperId } from './keeper';
import { containerSpec } from './spec';

/** The image's chain id of a service whose root is a snapshot: the build's next spare root of it is prepared once it started. */
const CHAIN_FILE = 'chain-id';

/** A service's container id: from its directory, which derives from build, run, scope step, attempt and name. */
function serviceContainerId(dir: string): string {
  return `cw-${createHash('sha256').update(dir).digest('hex').slice(0, 32)}`;
}

export function containerServices(cx: ContainerdContext): ServiceLauncher {
  let probes = 0;
  return {
    async prepare({ req, dir, work, config, env, netns, hosts, note }) {
      const id = serviceContainerId(dir);
      const where = `service ${req.name}`;
      await removeContainer(cx, id);
      await cleanUpContainer(cx, dir);
      // The keeper starts (the build's first container, maybe) while the root is prepared.
      cx.shimGroup(req.buildId).catch(() => undefined);
      const image = await resolveImage(cx, where, { ...config, image: req.spec.image }, req.artifacts, note);
      const root = await mountRoot(cx, image, req.buildId, id, dir, note, { spare: true });
      let meta: ContainerMeta = { id, outputs: {}, rootfs: root.rootfs, memoryLimited: false };
      await fs.writeFile(path.join(dir, META_FILE), JSON.stringify(meta));
      if ('chainId' in image) await fs.writeFile(path.join(dir, CHAIN_FILE), image.chainId);
      const limits = req.spec.containerLimits ?? config.container_limits;
      if (limits?.memory) {
        note(await limitMemory(id, limits.memory));
        meta = { ...meta, memoryLimited: true };
        await fs.writeFile(path.join(dir, META_FILE), JSON.stringify(meta));
      }
      const privileged = req.spec.privileged ?? false;
      const user = await userInImage(root, config.run.user, where);
      // Only what is not theirs yet: a chown through an input's view would copy the file up.
      if (user.uid !== 0) await ownTree(work, user);
      const workDir = `${BUILD_ROOT}/${id.slice(3, 11)}`;
      const spec = containerSpec(await cx.baseSpec(), {
        rootfs: root.rootfs.target,
        hostname: req.name.slice(0, 63),
        args: [config.run.path, ...config.run.args],
        env: containerEnv(root, user, env),
        cwd: path.posix.join(workDir, config.run.dir ?? '.'),
        user,
        mounts: [{ source: work, destination: workDir }, ...(hosts ? [{ source: hosts, destination: '/etc/hosts' }] : [])],
        privileged,
        hostCapabilities: privileged ? await cx.hostCapabilities() : [],
        cpuShares: limits?.cpu,
        cgroupsPath: cgroupsPath(id),
        netns: netns ? netnsPath(netns) : undefined,
        shimGroup: keeperId(req.buildId),
      });
      await fs.writeFile(path.join(dir, SPEC_FILE), JSON.stringify(spec));
    },
    async start(dir, buildId) {
      const id = serviceContainerId(dir);
      try {
        const spec = JSON.parse(await fs.readFile(path.join(dir, SPEC_FILE), 'utf8')) as object;
        await cx.shimGroup(buildId);
        await cx.api.createContainer(id, spec, { [BUILD_LABEL]: buildId });
        // A plain path that is not a fifo is a file the shim opens for appending (it creates none).
        const [stdout, stderr] = [FILES.stdout, FILES.stderr].map((f) => path.join(dir, f));
        await Promise.all([stdout, stderr].map((f) => fs.appendFile(f, '')));
        await cx.api.createTask(id, stdout, stderr);
        await cx.api.startTask(id);
      } catch (err) {
        await removeContainer(cx, id);
        await cleanUpContainer(cx, dir).catch(() => undefined);
        if (err instanceof ContainerdApiError) throw new ServiceFailed(`containerd could not run the service's container: ${err.message}`);
        throw err;
      }
      // The build's next task or service from this image finds its root ready (spare.ts).
      const chainId = await fs.readFile(path.join(dir, CHAIN_FILE), 'utf8').catch(() => undefined);
      if (chainId) cx.spares.refill(buildId, chainId);
      return containerRun(cx, dir, id);
    },
    async find(dir) {
      const meta = await readMeta(dir);
      if (!meta || meta.id !== serviceContainerId(dir)) return undefined;
      if ((await exitStatus(dir)) !== undefined) return containerRun(cx, dir, meta.id);
      const task = await taskOf(cx, meta.id);
      if (!task) return undefined;
      // Created but not started: the worker died between the two calls.
      if (task.status === TaskStatus.created) await cx.api.startTask(meta.id);
      return containerRun(cx, dir, meta.id);
    },
    probe(dir, command) {
      // Each probe is an exec of its own in the service's container: its id must be unique while it runs.
      return cx.ctr.argv(['tasks', 'exec', '--exec-id', `probe-${process.pid}-${probes++}`, serviceContainerId(dir), ...command]);
    },
    async stopped(dir) {
      const meta = await readMeta(dir);
      if (!meta) return;
      await removeContainer(cx, meta.id);
      await cleanUpContainer(cx, dir);
    },
  };
}

/** The container's task, or undefined when it has none (never created, or removed). */
function taskOf(cx: ContainerdContext, id: string): Promise<{ status: number; exitStatus: number } | undefined> {
  return cx.api.getTask(id).catch((err: unknown) => {
    if (isNotFound(err)) return undefined;
    throw err;
  });
}

/** The container's task: alive while containerd has it and it has not stopped; its exit status recorded in the service's directory once seen. */
function containerRun(cx: ContainerdContext, dir: string, id: string): ServiceRun {
  const record = async (code: number): Promise<number> => {
    await fs.writeFile(path.join(dir, FILES.exit), `${code}\n`);
    return code;
  };
  const signal = (sig: 'SIGTERM' | 'SIGKILL') =>
    cx.api.killTask(id, sig).catch((err: unknown) => {
      // An ended task (or one already removed) has nothing left to signal.
      if (!(err instanceof ContainerdApiError)) throw err;
    });
  return {
    what: `container ${id}`,
    // One Get per look: the supervision and readiness loops look every few milliseconds.
    async alive() {
      if ((await exitStatus(dir)) !== undefined) return false;
      const task = await taskOf(cx, id);
      if (task?.status !== TaskStatus.stopped) return task !== undefined;
      await record(task.exitStatus);
      return false;
    },
    exitStatus: () => exitStatus(dir),
    async terminate(graceMs) {
      await signal('SIGTERM');
      const code = await cx.api.waitTask(id, AbortSignal.timeout(graceMs)).catch(() => undefined);
      if (code !== undefined) {
        await record(code);
        return 'exited';
      }
      await signal('SIGKILL');
      await cx.api
        .waitTask(id)
        .then(record)
        .catch(() => undefined);
      return 'killed';
    },
    // The container's pid namespace ends with its init: nothing it started outlives it.
    reap: () => undefined,
  };
}
