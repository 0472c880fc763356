import fs from 'node:fs/promises';
import path from 'node:path';

// container_limits.memory on the local runtime: a memory cgroup per step when this
// host lets us make one (v2 or v1), else an address-space ulimit, which is coarser.
const V2_ROOT = '/sys/fs/cgroup';
const V1_ROOT = '/sys/fs/cgroup/memory';

export interface MemoryLimit {
  /** the procs file the step's wrapper joins */
  procsFile?: string;
  /** wrapper lines when no cgroup could be made */
  prelude?: string[];
  /** what the step log says about how the limit is enforced */
  note: string;
  cgroupDir?: string;
}

export async function applyMemoryLimit(name: string, bytes: number): Promise<MemoryLimit> {
  const v2 = await exists(path.join(V2_ROOT, 'cgroup.controllers'));
  try {
    if (v2) {
      const parent = path.join(V2_ROOT, 'causeway');
      await fs.mkdir(parent, { recursive: true });
      await fs.writeFile(path.join(V2_ROOT, 'cgroup.subtree_control'), '+memory').catch(() => undefined);
      await fs.writeFile(path.join(parent, 'cgroup.subtree_control'), '+memory').catch(() => undefined);
      const dir = path.join(parent, name);
      await fs.mkdir(dir, { recursive: true });
      await fs.writeFile(path.join(dir, 'memory.max'), String(bytes));
      await fs.writeFile(path.join(dir, 'memory.swap.max'), '0').catch(() => undefined);
      return { procsFile: path.join(dir, 'cgroup.procs'), cgroupDir: dir, note: `memory limit ${bytes} bytes (cgroup v2 ${dir})` };
    }
    if (await exists(V1_ROOT)) {
      const dir = path.join(V1_ROOT, 'causeway', name);
      await fs.mkdir(dir, { recursive: true });
      await fs.writeFile(path.join(dir, 'memory.limit_in_bytes'), String(bytes));
      await fs.writeFile(path.join(dir, 'memory.memsw.limit_in_bytes'), String(bytes)).catch(() => undefined);
      return { procsFile: path.join(dir, 'cgroup.procs'), cgroupDir: dir, note: `memory limit ${bytes} bytes (cgroup v1 ${dir})` };
    }
  } catch (err) {
    return ulimit(bytes, `cgroups are not writable here (${(err as Error).message})`);
  }
  return ulimit(bytes, 'no memory cgroup controller on this host');
}

/** True when the kernel killed something in the step's cgroup for exceeding the limit. */
export async function wasOomKilled(limit: MemoryLimit): Promise<boolean> {
  if (!limit.cgroupDir) return false;
  for (const file of ['memory.events', 'memory.oom_control']) {
    try {
      const text = await fs.readFile(path.join(limit.cgroupDir, file), 'utf8');
      const m = /oom_kill (\d+)/.exec(text);
      if (m) return Number(m[1]) > 0;
    } catch {
      // the other cgroup version's file
    }
  }
  return false;
}

export async function removeCgroup(limit: MemoryLimit): Promise<void> {
  if (!limit.cgroupDir) return;
  // Processes just sent SIGKILL (an aborted step) may take a moment to leave the cgroup;
  // rmdir fails with EBUSY until they have, so retry briefly instead of leaking it.
  for (let i = 0; i < 40; i++) {
    try {
      await fs.rmdir(limit.cgroupDir);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EBUSY') return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function ulimit(bytes: number, why: string): MemoryLimit {
  return {
    prelude: [`ulimit -v ${Math.max(1, Math.floor(bytes / 1024))}`],
    note: `memory limit ${bytes} bytes enforced as an address-space limit (ulimit -v): ${why}`,
  };
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}
