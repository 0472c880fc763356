import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { systemTool } from './network';

export interface UserIds {
  uid: number;
  gid: number;
}

/** A local user's uid and primary gid, from /etc/passwd. */
export async function userIds(user: string): Promise<UserIds> {
  const passwd = await fs.readFile('/etc/passwd', 'utf8').catch(() => '');
  const fields = passwd
    .split('\n')
    .map((l) => l.split(':'))
    .find((f) => f[0] === user);
  if (!fields) throw new Error('no such local user in /etc/passwd');
  return { uid: Number(fields[2]), gid: Number(fields[3]) };
}

/**
 * chown -R without a process: spawning chown costs more than walking a fresh directory. Each
 * directory's contents before the directory itself, so the new owner cannot write into one (and
 * swap an entry for a symlink the walk would follow) before everything under it is done. What is
 * theirs already is left alone: a chown in an input's overlay view would copy the file up.
 */
export async function chownTree(dir: string, ids: UserIds): Promise<void> {
  const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
  await Promise.all(entries.map((e) => (e.isDirectory() ? chownTree(path.join(dir, e.name), ids) : own(path.join(dir, e.name), ids))));
  await own(dir, ids);
}

async function own(file: string, ids: UserIds): Promise<void> {
  const st = await fs.lstat(file);
  if (st.uid !== ids.uid || st.gid !== ids.gid) await fs.lchown(file, ids.uid, ids.gid);
}

/**
 * Runs a command as another user, with no supplementary groups but `groups`, no capabilities
 * (the bounding set cleared too) and no_new_privs, so no setuid binary gives any back. setpriv
 * only sets these and execs, where runuser opens a PAM session and forks (2.5 ms against 7 ms a
 * start here); the process keeps the environment it is given, so its HOME and TMPDIR stay its own.
 *
 * It sees a /proc of its own, mounted with hidepid=invisible in a mount namespace of its own:
 * only its own uid's processes are there, not other builds' nor the worker's (the host's /proc
 * lists every process and command line). Not a PID namespace: pids, sessions and process groups
 * stay the host's, so SIGTERM/SIGKILL to the step's group, re-attaching by pid after a worker
 * restart and services' network namespaces work as before, and SIGTERM is not swallowed by an
 * init. `slave` propagation: an overlay the worker unmounts later leaves this view too. Each
 * proc mount has its own options since Linux 5.8; before, hidepid would change the host's /proc.
 */
export function asUser(ids: UserIds, command: string[], groups: number[] = [], loader: Record<string, string> = {}): string[] {
  const restore = Object.entries(loader).map(([k, v]) => `${k}=${v}`);
  // The same in one exec where npm run build compiled it (as-user.c): 5 ms a start against 18 at load 11.
  const helper = asUserHelper();
  if (helper) return [helper, String(ids.uid), String(ids.gid), groups.length ? groups.join(',') : '-', ...restore, '--', ...command];
  return asUserThroughTools(ids, command, groups, loader);
}

/** asUser through unshare, sh, mount and setpriv: where as-user.c was not compiled. */
export function asUserThroughTools(ids: UserIds, command: string[], groups: number[] = [], loader: Record<string, string> = {}): string[] {
  const restore = Object.entries(loader).map(([k, v]) => `${k}=${v}`);
  return [
    systemTool('unshare'),
    '--mount',
    '--propagation',
    'slave',
    '/bin/sh',
    '-c',
    '"$0" -t proc -o hidepid=invisible proc /proc && exec "$@"',
    systemTool('mount'),
    systemTool('setpriv'),
    `--reuid=${ids.uid}`,
    `--regid=${ids.gid}`,
    groups.length ? `--groups=${groups.join(',')}` : '--clear-groups',
    '--inh-caps=-all',
    '--bounding-set=-all',
    '--no-new-privs',
    '--',
    // The loader's variables only now, as the user (splitLoaderEnv).
    ...(restore.length
      ? ['/bin/sh', '-c', 'while [ "$1" != -- ]; do export "$1"; shift; done; shift; exec "$@"', 'sh', ...restore, '--']
      : []),
    ...command,
  ];
}

let helper: string | null | undefined;

/**
 * scripts/build-helpers.sh's output, beside this file in dist/ (or, for this file's TypeScript
 * source as jest runs it, in dist/ beside its output), if built: looked up once.
 */
export function asUserHelper(): string | null {
  helper ??=
    [path.join(__dirname, 'as-user'), path.join(__dirname, '..', '..', '..', 'dist', 'activities', 'runtime', 'local', 'as-user')].find(
      (file) => existsSync(file),
    ) ?? null;
  return helper;
}

/**
 * What the dynamic loader and libc read from the environment (glibc's list for setuid
 * programs, whose loader ignores them): LD_PRELOAD, LD_AUDIT, GCONV_PATH load a library,
 * LD_DEBUG_OUTPUT and MALLOC_TRACE write a file.
 */
const LOADER_VAR =
  /^(LD_\w*|GCONV_PATH|GETCONF_DIR|GLIBC_TUNABLES|HOSTALIASES|LOCALDOMAIN|LOCPATH|MALLOC_\w*|NIS_PATH|NLSPATH|RESOLV_HOST_CONF|RES_OPTIONS|TZDIR)$/;

/**
 * A step's environment split for a command that starts as root and becomes the step's user
 * (asUser): the root helpers before setpriv (the wrapper's sh, nsenter, unshare, mount,
 * setpriv itself) must not see the loader's variables, or a step's params could make root load
 * the step's library (LD_PRELOAD) or write a file anywhere (LD_DEBUG_OUTPUT). asUser gives them
 * back to the command after setpriv.
 */
export function splitLoaderEnv(env: Record<string, string>): { env: Record<string, string>; loader: Record<string, string> } {
  const rest: Record<string, string> = {};
  const loader: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) (LOADER_VAR.test(k) ? loader : rest)[k] = v;
  return { env: rest, loader };
}

/** What runuser set and setpriv does not: the name of the user the process runs as. */
export function userEnv(user: string): Record<string, string> {
  return { USER: user, LOGNAME: user };
}
