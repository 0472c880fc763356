import fs from 'node:fs/promises';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { abandonedCheck, releaseCheck } from './runtime/local/check';
import { leasedBuilds, releaseBuildUser } from './runtime/local/isolation';
import { LAYERS_DIR, mountsUnder, unmountUnder } from './runtime/local/inputs';
import { hasNetwork, removeNetwork } from './runtime/local/network';
import { findProcess, isAlive, terminate } from './runtime/local/process';

export interface ReconcileReport {
  /** step or service processes of closed builds that were still running, now stopped */
  stopped: { buildId: string; dir: string; pid: number }[];
  /** build directories of builds closed longer than the retention, now deleted */
  removed: string[];
  /** builds whose services' network namespace was left behind, now deleted */
  networks: string[];
  /** closed builds whose uid (local runtime) was still leased, now released */
  uids: string[];
  /** inputs' copy-on-write views (overlay mounts) of closed builds' steps, now unmounted */
  unmounted: string[];
  /** builds still running, left alone */
  running: number;
}

export interface ReconcileOptions {
  home: string;
  client: Client;
  /** how long a closed build's artifacts stay for `causeway retry` */
  retentionMs: number;
  killGraceMs: number;
  dryRun?: boolean;
  /** what the worker's runtime holds of a closed build outside its directory (containerd: containers, mounts, snapshots), removed first */
  removeRuntimeObjects?: (buildId: string) => Promise<void>;
}

/**
 * Removes what a build that ended without running its own teardown (for example
 * `temporal workflow terminate`, which runs no workflow code) left behind: processes
 * still running in its directories, and, after the retention period, its artifacts.
 */
export async function reconcileBuilds(opts: ReconcileOptions): Promise<ReconcileReport> {
  const report: ReconcileReport = { stopped: [], removed: [], networks: [], unmounted: [], uids: [], running: 0 };
  const root = path.join(opts.home, 'builds');
  const builds = await fs.readdir(root).catch(() => [] as string[]);
  for (const buildId of builds) {
    // A pipeline's check of an image type (activities/image-check.ts) is no workflow: it is over once its worker is gone.
    const check = abandonedCheck(buildId);
    if (check === false) continue;
    const closedAt = check ? 'unknown' : await closeTime(opts.client, buildId);
    if (closedAt === 'running') {
      report.running += 1;
      continue;
    }
    const dir = path.join(root, buildId);
    if (!opts.dryRun) await opts.removeRuntimeObjects?.(buildId);
    for (const procDir of await dirsWithPid(dir)) {
      const proc = await findProcess(procDir);
      if (!proc || !(await isAlive(proc))) continue;
      report.stopped.push({ buildId, dir: procDir, pid: proc.pid });
      if (!opts.dryRun) await terminate(proc, opts.killGraceMs);
    }
    report.unmounted.push(...(opts.dryRun ? await mountsUnder(dir) : await unmountUnder(dir)));
    if (opts.dryRun ? await hasNetwork(buildId) : await removeNetwork(buildId)) report.networks.push(buildId);
    const age = closedAt === 'unknown' ? Infinity : Date.now() - closedAt.getTime();
    if (age > opts.retentionMs) {
      report.removed.push(dir);
      if (!opts.dryRun) await fs.rm(dir, { recursive: true, force: true });
    }
  }
  // After the processes above were stopped; a lease may outlive its directory (a worker killed in finishBuild).
  for (const buildId of await leasedBuilds(opts.home)) {
    // A pipeline's check leases a uid too: it is over only once the worker that ran it is gone.
    const abandoned = abandonedCheck(buildId);
    if (abandoned === false || (abandoned === undefined && (await closeTime(opts.client, buildId)) === 'running')) continue;
    report.uids.push(buildId);
    if (!opts.dryRun) await (abandoned ? releaseCheck(opts.home, buildId) : releaseBuildUser(opts.home, buildId));
  }
  return report;
}

/** When the build's latest run closed; 'unknown' when Temporal has no such build (its history expired). */
async function closeTime(client: Client, buildId: string): Promise<Date | 'running' | 'unknown'> {
  try {
    const info = await client.workflow.getHandle(buildId).describe();
    if (info.status.name === 'RUNNING') return 'running';
    return info.closeTime ?? new Date();
  } catch (err) {
    if ((err as Error).name === 'WorkflowNotFoundError') return 'unknown';
    throw err;
  }
}

/** The directories of a step's directory that hold what the step works on, never a process's files. */
const STEP_TREES = new Set(['work', 'home', 'tmp', LAYERS_DIR]);

async function dirsWithPid(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
  if (entries.some((e) => e.isFile() && e.name === 'pid')) out.push(dir);
  for (const e of entries) {
    // A step's work tree and its inputs' layers can be large and never hold pid files of ours.
    if (e.isDirectory() && !STEP_TREES.has(e.name)) out.push(...(await dirsWithPid(path.join(dir, e.name))));
  }
  return out;
}
