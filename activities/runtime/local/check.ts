// A pipeline's check of a host resource type (activities/pipeline.ts) runs as a build step
// does on the local runtime: under a uid leased from the builds' range (isolation.ts), with
// no capabilities, a /proc that shows only its own processes (asUser), in a scratch directory
// only that uid can enter. The lease is named after this worker process and the resource, so
// a retried check on the same worker meets its own lease, and the reconciler releases the
// lease of a check whose worker died (abandonedCheck).
import { createHash } from 'node:crypto';
import { chownSync, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { segment } from '../../safe-path';
import { buildUser, canIsolate, openHome, releaseBuildUser, stepPath } from './isolation';
import { runCommand, type RunResult } from './spawner';
import { asUser } from './users';

const CHECK_LEASE = /^check-(\d+)\.(\d+)-/;

/** The directory a check runs in: `CAUSEWAY_HOME/checks/<id>`, its uid's only. */
export function checkDir(home: string, id: string): string {
  return path.join(home, 'checks', segment(id, 'check id'));
}

/** A process's start time (clock ticks since boot): with its pid it names one process, never a later one given the pid. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** The lease id of a check of `resource` of `pipeline` by this worker process. */
export function checkId(pipeline: string, resource: string): string {
  const hash = createHash('sha256').update(`${pipeline}\0${resource}`).digest('hex').slice(0, 16);
  return `check-${process.pid}.${startTime(process.pid)}-${hash}`;
}

/** For a check's lease: whether the worker process that ran the check is gone. undefined: not a check's lease. */
export function abandonedCheck(id: string): boolean | undefined {
  const m = CHECK_LEASE.exec(id);
  if (!m) return undefined;
  return startTime(Number(m[1])) !== m[2];
}

/** Gives the check's uid back (killing whatever still runs under it) and removes its directory. Idempotent. */
export async function releaseCheck(home: string, id: string): Promise<void> {
  await releaseBuildUser(home, id);
  await fs.rm(checkDir(home, id), { recursive: true, force: true });
}

/**
 * Runs `file` with `input` on stdin to its end or its timeout (which kills its process group).
 * A worker that is not root cannot change uids: the check then runs as the worker, with the
 * worker's environment, as before.
 */
export async function runHostCheck(opts: { home: string; id: string; file: string; input: string; timeoutMs: number }): Promise<RunResult> {
  const { home, id, file, input, timeoutMs } = opts;
  if (!canIsolate()) return runCommand(file, [], { input, timeoutMs, group: true });
  const user = await buildUser(home, id);
  try {
    await openHome(home);
    const checks = path.dirname(checkDir(home, id));
    await fs.mkdir(checks, { recursive: true });
    await fs.chmod(checks, 0o711);
    const dir = checkDir(home, id);
    // What an earlier attempt left is not this one's.
    await fs.rm(dir, { recursive: true, force: true });
    const tmp = path.join(dir, 'tmp');
    await fs.mkdir(tmp, { recursive: true, mode: 0o700 });
    for (const d of [tmp, dir]) chownSync(d, user.uid, user.gid);
    await fs.chmod(dir, 0o700);
    const [cmd, ...args] = asUser(user, [file]);
    return await runCommand(cmd, args, {
      env: { PATH: stepPath(), LANG: process.env.LANG ?? 'C.UTF-8', HOME: dir, TMPDIR: tmp },
      cwd: dir,
      input,
      timeoutMs,
      group: true,
    });
  } finally {
    await releaseCheck(home, id);
  }
}
