// Services as containers: the local runtime's service lifecycle (its own network namespace on
// the build's bridge, readiness, supervision, SIGTERM/SIGKILL stop, handover) with the process
// replaced by a container from the service's image, which joins that namespace.
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ownTree } from '../local/inputs';
import { netnsPath } from '../local/network';
import type { ServiceLauncher } from '../local/service-state';
import { cgroupsPath, limitMemory } from './cgroup';
import {
  BUILD_ROOT,
  cleanUpContainer,
  containerEnv,
  ctrEnv,
  ctrRun,
  META_FILE,
  mountRoot,
  readMeta,
  resolveImage,
  SPEC_FILE,
  userInImage,
  type ContainerMeta,
} from './container';
import type { ContainerdContext } from './context';
import { containerSpec } from './spec';

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
      await cleanUpContainer(cx, dir);
      const image = await resolveImage(cx, where, { ...config, image: req.spec.image }, req.artifacts, note);
      const root = await mountRoot(cx, image, req.buildId, id, dir, note);
      let meta: ContainerMeta = { id, outputs: {}, rootfs: root.rootfs, memoryLimited: false };
      await fs.writeFile(path.join(dir, META_FILE), JSON.stringify(meta));
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
      });
      await fs.writeFile(path.join(dir, SPEC_FILE), JSON.stringify(spec));
      return { command: ctrRun(cx, req.buildId, dir, id), env: ctrEnv() };
    },
    probe(dir, command) {
      // Each probe is an exec of its own in the service's container: its id must be unique while it runs.
      return cx.ctr.argv(['tasks', 'exec', '--exec-id', `probe-${process.pid}-${probes++}`, serviceContainerId(dir), ...command]);
    },
    async stopped(dir) {
      const meta = await readMeta(dir);
      if (!meta) return;
      // Stopped by a signal to ctr, the container may still be there: it goes with its root.
      await cx.ctr.run(['tasks', 'rm', '-f', meta.id], `removing the task of ${meta.id}`).catch(() => undefined);
      await cx.ctr.run(['containers', 'rm', meta.id], `removing container ${meta.id}`).catch(() => undefined);
      await cleanUpContainer(cx, dir);
    },
  };
}
