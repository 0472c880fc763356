import { accessSync, constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { networkName } from '../../../common/services';
import { runCommand } from './spawner';

/** Where `ip netns` keeps a namespace; `nsenter --net=` joins it. */
export function netnsPath(network: string): string {
  return `/run/netns/${network}`;
}

const tools = new Map<string, string>();

/**
 * The absolute path of a system tool (nsenter, runuser) as the worker finds it: a step's or
 * service's `PATH` param must not hide the tools that set up its process.
 */
export function systemTool(name: string): string {
  let found = tools.get(name);
  if (!found) {
    const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
    found = dirs.map((d) => path.join(d, name)).find((p) => {
      try {
        accessSync(p, constants.X_OK);
        return true;
      } catch {
        return false;
      }
    }) ?? name;
    tools.set(name, found);
  }
  return found;
}

/** `nsenter` prefix that runs a command inside the build's network, or nothing in loopback mode. */
export function inNetwork(network: string | undefined, command: string[]): string[] {
  return network ? [systemTool('nsenter'), `--net=${netnsPath(network)}`, ...command] : command;
}

export interface BuildNetwork {
  /** the namespace's name; undefined when services fall back to loopback addresses on the host */
  network?: string;
  /** what the service's log says about isolation */
  note: string;
}

/**
 * The build's network namespace, created by its first service (idempotent: concurrent
 * services of one build race on `ip netns add` and all end up in the same one). Where a
 * namespace cannot be made, services listen on per-service loopback addresses of the host.
 */
export async function ensureNetwork(buildId: string): Promise<BuildNetwork> {
  const name = networkName(buildId);
  const fallback = (why: string): BuildNetwork => ({
    note:
      `services run on the host's loopback with addresses of their own (${why}): ` +
      'builds do not collide on ports, but steps can reach other builds’ services and the outside network',
  });
  if (process.env.CAUSEWAY_SERVICE_ISOLATION === 'loopback') return fallback('CAUSEWAY_SERVICE_ISOLATION=loopback');
  if (process.platform !== 'linux') return fallback('network namespaces need Linux');
  if (process.getuid?.() !== 0) return fallback('network namespaces need a worker running as root');
  try {
    // One shell, forked by the process helper (not from the worker's large process); the
    // namespace may exist already: another service of the build made it, or is making it now.
    // `ip -n` sets the link up without `ip netns exec`'s mount namespace and /sys remount.
    const ip = systemTool('ip');
    const r = await runCommand('/bin/sh', ['-c', '"$0" netns add "$1" 2>/dev/null || [ -e "$2" ]; "$0" -n "$1" link set lo up', ip, name, netnsPath(name)]);
    if (r.code !== 0) throw new Error(r.stderr.trim().split('\n')[0] || `exit status ${r.code ?? r.signal}`);
  } catch (err) {
    return fallback(`cannot create a network namespace: ${(err as Error).message.split('\n')[0]}`);
  }
  return {
    network: name,
    note: `network namespace ${name}: this build's services and the steps that use them share a network of their own, with no access to the outside network`,
  };
}

/** Whether the build's services made a namespace that still exists. */
export async function hasNetwork(buildId: string): Promise<boolean> {
  return exists(netnsPath(networkName(buildId)));
}

/** Removes the build's namespace, if its services made one (finishBuild, the reconciler); true when it did. */
export async function removeNetwork(buildId: string): Promise<boolean> {
  const name = networkName(buildId);
  if (!(await exists(netnsPath(name)))) return false;
  return runCommand(systemTool('ip'), ['netns', 'del', name]).then(
    (r) => r.code === 0,
    () => false,
  );
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}
