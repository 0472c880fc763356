// A container's cgroup: runc makes the leaf `/causeway-ctr/<id>/task` in every hierarchy and
// removes it when the task is deleted. container_limits.memory is set on the parent, which
// this runtime makes and removes: once `ctr run` has deleted the task the leaf is gone, and the
// parent still says whether the limit was hit (cgroup v1 counts an OOM kill only in the leaf).
import fs from 'node:fs/promises';
import path from 'node:path';

const CGROUP_ROOT = '/sys/fs/cgroup';
const PARENT = 'causeway-ctr';
const SIGKILL_STATUS = 128 + 9;

export function cgroupsPath(containerId: string): string {
  return `/${PARENT}/${containerId}/task`;
}

async function isV2(): Promise<boolean> {
  return fs.access(path.join(CGROUP_ROOT, 'cgroup.controllers')).then(
    () => true,
    () => false,
  );
}

async function memoryParent(containerId: string): Promise<string> {
  return (await isV2()) ? path.join(CGROUP_ROOT, PARENT, containerId) : path.join(CGROUP_ROOT, 'memory', PARENT, containerId);
}

/** Sets the memory limit (swap included, where the kernel accounts it) on the container's parent cgroup. */
export async function limitMemory(containerId: string, bytes: number): Promise<string> {
  const dir = await memoryParent(containerId);
  await fs.mkdir(dir, { recursive: true });
  if (await isV2()) {
    await fs.writeFile(path.join(path.dirname(dir), 'cgroup.subtree_control'), '+memory').catch(() => undefined);
    await fs.writeFile(path.join(dir, 'memory.max'), String(bytes));
    await fs.writeFile(path.join(dir, 'memory.swap.max'), '0').catch(() => undefined);
    await fs.writeFile(path.join(dir, 'cgroup.subtree_control'), '+memory').catch(() => undefined);
  } else {
    await fs.writeFile(path.join(dir, 'memory.limit_in_bytes'), String(bytes));
    await fs.writeFile(path.join(dir, 'memory.memsw.limit_in_bytes'), String(bytes)).catch(() => undefined);
  }
  return `memory limit ${bytes} bytes (cgroup ${dir})`;
}

/** True when a task that ended with SIGKILL's status had used all of its memory limit: the kernel's OOM killer ended it. */
export async function wasOomKilled(containerId: string, exitCode: number): Promise<boolean> {
  if (exitCode !== SIGKILL_STATUS) return false;
  const dir = await memoryParent(containerId);
  const read = (file: string) => fs.readFile(path.join(dir, file), 'utf8').catch(() => '');
  if (await isV2()) return Number(/oom_kill (\d+)/.exec(await read('memory.events'))?.[1] ?? 0) > 0;
  // The peak reached the limit (failcnt stays 0 here once the limit is memory+swap's).
  const [peak, limit] = await Promise.all(['memory.max_usage_in_bytes', 'memory.limit_in_bytes'].map(read));
  return peak.trim() !== '' && Number(peak) >= Number(limit);
}

/** Removes the container's parent cgroup from every hierarchy (runc removed the leaf); idempotent. */
export async function removeCgroups(containerId: string): Promise<void> {
  const dirs = (await isV2())
    ? [path.join(CGROUP_ROOT, PARENT, containerId)]
    : (await fs.readdir(CGROUP_ROOT)).map((h) => path.join(CGROUP_ROOT, h, PARENT, containerId));
  await Promise.all(
    dirs.map(async (dir) => {
      // A task just killed may take a moment to leave its leaf: retry briefly instead of leaking it.
      for (let i = 0; i < 40; i++) {
        try {
          await fs.rmdir(path.join(dir, 'task')).catch((err: NodeJS.ErrnoException) => {
            if (err.code !== 'ENOENT') throw err;
          });
          await fs.rmdir(dir);
          return;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOENT' || code === 'ENOTDIR') return;
          if (code !== 'EBUSY') throw err;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }),
  );
}
