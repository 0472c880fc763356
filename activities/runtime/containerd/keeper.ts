// One runc shim per build, as CRI has one per pod: every task container of a build carries the
// runc v2 shim's group annotation, so only the build's first task pays the shim's start and no
// task's delete waits for a shim to exit. A group's shim exits when its last container is
// deleted, which raced the next step's create (a step's container is deleted while the next one
// is created); the build's keeper closes that race: a container whose task is created and never
// started (runc's init waits for a start that never comes), so the group never empties while
// the build runs. The build's end removes it with the build's other containers (its label).
// Whether it is there is asked of containerd on every use (one Get), never remembered: another
// worker's finishBuild or the reconciler may have removed it since this worker started it.
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ContainerdApiError, isNotFound, TaskStatus, type ContainerdApi } from './api';
import { cgroupsPath } from './cgroup';
import { BUILD_LABEL } from './ctr';
import { GROUP_ANNOTATION, type OciSpec } from './spec';

/** The build's keeper container id, which is also the name of its shim group. */
export function keeperId(buildId: string): string {
  return `cw-keep-${createHash('sha256').update(buildId).digest('hex').slice(0, 32)}`;
}

/**
 * The keeper's spec: containerd's default with the group annotation, run from a root holding
 * only `/pause`, an empty executable file (runc checks the process exists at create; it never runs).
 */
export function keeperSpec(base: OciSpec, buildId: string, rootfs: string): OciSpec {
  const spec: OciSpec = structuredClone(base);
  spec.root = { path: rootfs, readonly: true };
  spec.process.args = ['/pause'];
  spec.process.cwd = '/';
  spec.process.env = [];
  spec.linux.cgroupsPath = cgroupsPath(keeperId(buildId));
  spec.annotations = { ...(spec.annotations as Record<string, string> | undefined), [GROUP_ANNOTATION]: keeperId(buildId) };
  return spec;
}

/** Creates the build's keeper (container and created task) unless it exists; idempotent, also after a worker restart. */
export async function startKeeper(api: ContainerdApi, base: OciSpec, home: string, buildId: string): Promise<void> {
  const rootfs = path.join(home, 'containerd-keeper', 'rootfs');
  await fs.mkdir(rootfs, { recursive: true });
  await fs.writeFile(path.join(rootfs, 'pause'), '', { mode: 0o755, flag: 'a' });
  const id = keeperId(buildId);
  await api.createContainer(id, keeperSpec(base, buildId, rootfs), { [BUILD_LABEL]: buildId }).catch(ignoreExists);
  await api.createTask(id, '', '').catch(ignoreExists);
}

function ignoreExists(err: unknown): void {
  if (!(err instanceof ContainerdApiError && err.code === grpc.status.ALREADY_EXISTS)) throw err;
}

/** The build's shim group: its keeper's id, once containerd holds the keeper with its task created (started again when it does not). */
export async function ensureKeeper(api: ContainerdApi, baseSpec: () => Promise<OciSpec>, home: string, buildId: string): Promise<string> {
  const id = keeperId(buildId);
  const status = await api.getTask(id).then(
    (t) => t.status,
    (err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    },
  );
  if (status === TaskStatus.created) return id;
  // A keeper's task that is not waiting for its start (its init killed) keeps no group: a new one.
  if (status !== undefined) await api.deleteTask(id).catch((err: unknown) => (isNotFound(err) ? undefined : Promise.reject(err)));
  await startKeeper(api, await baseSpec(), home, buildId);
  return id;
}
