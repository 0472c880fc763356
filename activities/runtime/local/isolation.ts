// Builds isolated from each other and from the worker on the local runtime (docs/security.md):
// each build's steps and services run under a uid of its own, leased from a range like systemd's
// DynamicUser, with no capabilities and no_new_privs. The lease is durable (files under
// CAUSEWAY_HOME, written by atomic link) and keyed by build id, so a retried activity or a
// restarted worker finds the same uid; finishBuild and the reconciler release it.
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { nameProblem } from '../../../schemas/safe-values';
import { paths } from '../../deps';
import { StepErrored } from '../../errors';
import { PathEscapeError } from '../../safe-path';
import { runCommand } from './spawner';
import { asUser, type UserIds } from './users';

/**
 * 65,536 uids from 0x70000000: above the ranges systemd gives users, DynamicUser and
 * systemd-nspawn containers (up to 1879048191), so no account or container on the host has one.
 */
export const BUILD_UID_FIRST = 0x70000000;
export const BUILD_UID_COUNT = 65536;

/** Where leases live: `leases/<uid>` names the build, `builds/<build>` the uid. Only the worker reads them. */
function leaseRoot(home: string): string {
  return path.join(home, 'build-uids');
}

/** Whether this worker can run builds under uids of their own: only root can change uids. */
export function canIsolate(): boolean {
  return process.getuid?.() === 0;
}

/** What a worker that is not root cannot give, said in every step's log. */
export function notIsolatedNote(): string {
  return (
    `not isolated: the worker runs as uid ${process.getuid?.()}, not root, so this step runs with the worker's own uid and can read ` +
    `other builds' directories, the worker's environment and CAUSEWAY_HOME (codec keys, NATS seeds) and signal the worker; ` +
    `run a worker that is not root only for one trusted user (docs/security.md)`
  );
}

async function readText(file: string): Promise<string | undefined> {
  return fs.readFile(file, 'utf8').catch(() => undefined);
}

/** Creates `file` holding `text` only if it does not exist yet: a link is atomic, so no reader sees it half-written. */
async function createOnce(file: string, text: string): Promise<boolean> {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  await fs.writeFile(tmp, text, { mode: 0o600 });
  try {
    await fs.link(tmp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

/**
 * The build's uid (its gid is the same number), leased on first use. Idempotent by build id:
 * concurrent callers for one build probe the same sequence of uids, so they meet on one lease.
 */
export async function buildUser(home: string, buildId: string): Promise<UserIds> {
  const root = leaseRoot(home);
  const byBuild = path.join(root, 'builds', path.basename(paths.build(home, buildId)));
  const leaseOf = (uid: number) => path.join(root, 'leases', String(uid));
  const recorded = Number(await readText(byBuild));
  if (Number.isInteger(recorded) && (await readText(leaseOf(recorded))) === buildId) return { uid: recorded, gid: recorded };
  await Promise.all(['leases', 'builds'].map((d) => fs.mkdir(path.join(root, d), { recursive: true, mode: 0o700 })));
  await fs.chmod(root, 0o700);
  const start = createHash('sha256').update(buildId).digest().readUInt32BE(0) % BUILD_UID_COUNT;
  let uid: number | undefined;
  for (let i = 0; i < BUILD_UID_COUNT && uid === undefined; i++) {
    const candidate = BUILD_UID_FIRST + ((start + i) % BUILD_UID_COUNT);
    if ((await createOnce(leaseOf(candidate), buildId)) || (await readText(leaseOf(candidate))) === buildId) uid = candidate;
  }
  if (uid === undefined)
    throw new StepErrored(
      `all ${BUILD_UID_COUNT} build uids from ${BUILD_UID_FIRST} are leased (${path.join(root, 'leases')}): ` +
        'wait for builds to end, or run `causeway reconcile` to release those of closed builds',
    );
  // A stale record (its lease released) is replaced; a concurrent caller's record wins.
  if (Number.isInteger(recorded)) await fs.rm(byBuild, { force: true });
  if (!(await createOnce(byBuild, String(uid)))) {
    const theirs = Number(await readText(byBuild));
    if (theirs !== uid) {
      await fs.rm(leaseOf(uid), { force: true });
      uid = theirs;
    }
  }
  return { uid, gid: uid };
}

/** Runs of builds whose uid and directory this worker has set up, by `home`, build and run id. */
const readyRuns = new Map<string, Promise<UserIds>>();
/** Runs remembered at most: a run whose finishBuild ran elsewhere is forgotten after this many others. */
const READY_RUNS_KEPT = 1000;

/**
 * buildUser and openBuildDir once per run of a build on this worker: a build's later steps
 * skip the lease files, the directory walk and the chmods (~15 file system calls, a quarter
 * of a trivial step's time on the worker: BENCHMARKS.md, "Step overhead"). Keyed by run id,
 * so a reset build (`causeway retry`), whose uid may have been released, checks its lease again.
 */
export function readyBuildUser(home: string, buildId: string, runId: string): Promise<UserIds> {
  const key = `${home}\0${buildId}\0${runId}`;
  let ready = readyRuns.get(key);
  if (!ready) {
    ready = buildUser(home, buildId).then(async (user) => {
      await openBuildDir(home, buildId, user);
      return user;
    });
    readyRuns.set(key, ready);
    ready.catch(() => readyRuns.delete(key));
    if (readyRuns.size > READY_RUNS_KEPT) readyRuns.delete(readyRuns.keys().next().value!);
  }
  return ready;
}

function forgetReadyRuns(home: string, buildId: string): void {
  const prefix = `${home}\0${buildId}\0`;
  for (const key of readyRuns.keys()) if (key.startsWith(prefix)) readyRuns.delete(key);
}

/** Builds holding a lease (for the reconciler, which releases those of closed builds). */
export async function leasedBuilds(home: string): Promise<string[]> {
  return fs.readdir(path.join(leaseRoot(home), 'builds')).catch(() => [] as string[]);
}

/**
 * Gives the build's uid back: what still runs under it (a daemon that left its step's process
 * group) is killed, the build's directory closed to it, and the lease removed. Idempotent.
 * The id is checked here, as the build input checks it: one that is a path (`../../x`) would
 * read a uid from any file and kill that uid's processes.
 */
export async function releaseBuildUser(home: string, buildId: string): Promise<void> {
  const bad = nameProblem(buildId);
  if (bad) throw new PathEscapeError(`build id ${JSON.stringify(buildId)}: ${bad}`);
  forgetReadyRuns(home, buildId);
  const root = leaseRoot(home);
  const byBuild = path.join(root, 'builds', buildId);
  const uid = Number(await readText(byBuild));
  if (!Number.isInteger(uid)) return;
  await killUid(uid);
  const dir = paths.build(home, buildId);
  // Its files keep the uid, but the next build given it cannot enter the directory above them.
  await fs.chown(dir, 0, 0).catch(ignoreMissing);
  await fs.chmod(dir, 0o700).catch(ignoreMissing);
  const lease = path.join(root, 'leases', String(uid));
  if ((await readText(lease)) === buildId) await fs.rm(lease, { force: true });
  await fs.rm(byBuild, { force: true });
}

function ignoreMissing(err: NodeJS.ErrnoException): void {
  if (err.code !== 'ENOENT') throw err;
}

/**
 * SIGKILL to every process of the build's uid: a shell running as that uid signals them all
 * with kill(-1), which reaches each process whose real or saved uid is its own and spares the
 * sender. One fork in the process helper, where a scan of /proc read every process's status on
 * the worker's main thread (~3.5 CPU-ms a build with ~150 processes, more on a busier machine).
 */
async function killUid(uid: number): Promise<void> {
  // kill(-1) as any other uid, root above all, would reach far more than a build's processes.
  if (!Number.isInteger(uid) || uid < BUILD_UID_FIRST || uid >= BUILD_UID_FIRST + BUILD_UID_COUNT)
    throw new Error(`refusing to kill the processes of uid ${uid}: not a build's uid`);
  const [file, ...args] = asUser({ uid, gid: uid }, ['/bin/sh', '-c', 'kill -s KILL -- -1']);
  const r = await runCommand(file, args, { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`killing the processes of uid ${uid} failed (exit ${r.code ?? r.signal}): ${r.stderr.trim()}`);
}

/**
 * Opens the way to the build's directory for its uid only: CAUSEWAY_HOME and builds/ may be
 * traversed but not listed (0711), the build's directory belongs to root and the build's group
 * (0750), so its steps enter it but cannot rename what the worker writes there. Every directory
 * above CAUSEWAY_HOME must be traversable by others: a 0700 one (a root's home) is an error.
 */
export async function openBuildDir(home: string, buildId: string, user: UserIds): Promise<void> {
  const builds = path.dirname(paths.build(home, buildId));
  await openHome(home);
  await fs.mkdir(builds, { recursive: true });
  await fs.chmod(builds, 0o711);
  const dir = paths.build(home, buildId);
  await fs.mkdir(dir, { recursive: true });
  await fs.chown(dir, 0, user.gid);
  await fs.chmod(dir, 0o750);
}

/**
 * CAUSEWAY_HOME made traversable (not listable) by others, so a build's or a check's uid can
 * reach its own directory in it; a directory above it that others cannot traverse is an error.
 */
export async function openHome(home: string): Promise<void> {
  for (let d = path.dirname(path.resolve(home)); ; d = path.dirname(d)) {
    const st = await fs.stat(d);
    if ((st.mode & 0o001) === 0)
      throw new StepErrored(
        `CAUSEWAY_HOME ${home}: ${d} is not traversable by other users (mode ${(st.mode & 0o777).toString(8)}), so a build's uid cannot reach ` +
          `its directory: set CAUSEWAY_HOME under a directory others may traverse (e.g. /var/lib/causeway), or \`chmod o+x ${d}\``,
      );
    if (d === path.dirname(d)) break;
  }
  await fs.chmod(home, 0o711);
}

const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin';
let reachablePath: string | undefined;

/**
 * The PATH a step starts with: the worker's, without the directories a build's uid cannot
 * search (tools under root's 0700 home, e.g. pyenv's shims, would shadow the system's with
 * "Permission denied"); the worker's own when it does not change uids.
 */
export function stepPath(): string {
  const worker = process.env.PATH ?? DEFAULT_PATH;
  if (!canIsolate()) return worker;
  reachablePath ??= worker
    .split(':')
    .filter((dir) => path.isAbsolute(dir) && searchableByAll(dir))
    .join(':');
  return reachablePath || DEFAULT_PATH;
}

function searchableByAll(dir: string): boolean {
  for (let d = dir; ; d = path.dirname(d)) {
    const st = statSync(d, { throwIfNoEntry: false });
    if (!st || (st.mode & 0o001) === 0) return false;
    if (d === path.dirname(d)) return true;
  }
}
