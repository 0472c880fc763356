// The local runtime's service network (docs/networking.md): every service instance runs in a
// network namespace of its own, joined by a veth pair to a bridge that lives inside the build's
// own "hub" namespace, never in the host's. Steps that use services run in the hub. Nothing
// links the hub to the host, so a build reaches neither another build nor the outside network,
// without a single iptables rule; and since builds are isolated, every build uses the same
// address plan.
import { createHash } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { networkName, type ServiceAddress } from '../../../common/services';
import type { ServiceRef } from '../../types';
import { runCommand } from './spawner';

/** Where `ip netns` keeps namespaces; `nsenter --net=` joins one by its file. */
const NETNS_DIR = '/run/netns';

export function netnsPath(network: string): string {
  return path.join(NETNS_DIR, network);
}

/**
 * Each build's address plan: 198.18.64.0/18 (the part of the benchmark range 198.18.0.0/15
 * left to the local runtime; the kubernetes node and a containerd runtime own the rest). The
 * hub's bridge is .1; services get the others, 16,381 per build.
 */
const SUBNET_BASE = (198 << 24) | (18 << 16) | (64 << 8);
const PREFIX = 18;
const BRIDGE_INDEX = 1;
const FIRST_INDEX = 2;
const SIZE = 2 ** (32 - PREFIX);
const LAST_INDEX = SIZE - 2;
/** the bridge inside each hub namespace: names of links are per namespace */
const BRIDGE = 'br0';
/** Allocations and locks: on tmpfs, so like the namespaces they do not outlive a reboot. */
const STATE_ROOT = '/run/causeway/net';
/**
 * Serialises `ip netns add` on the machine until /run/netns is a mount point: the first adds,
 * made at once, each bind-mount it onto itself, and a namespace under a covered mount is lost.
 */
const GLOBAL_LOCK = path.join(STATE_ROOT, 'netns.lock');
let netnsMounted = false;

/** The command prefix that takes the machine's lock for `ip netns add`, or nothing once it is not needed. */
async function netnsAddLock(): Promise<string> {
  if (!netnsMounted) {
    const mounts = await fs.readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
    netnsMounted = mounts.split('\n').some((line) => line.split(' ')[4] === NETNS_DIR);
  }
  return netnsMounted ? '' : `${systemTool('flock')} ${GLOBAL_LOCK}`;
}

function addressOf(index: number): string {
  const n = (SUBNET_BASE + index) >>> 0;
  return [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join('.');
}

function hash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** A service instance's name inside its build: stable across retries of its activities. */
function serviceKey(ref: ServiceRef): string {
  return hash(`${ref.runId}/${ref.scopeStepId}/${ref.runKey}/${ref.name}`).slice(0, 12);
}

/** The service's own namespace: the hub's name, so a build's namespaces are found by prefix. */
function serviceNetns(ref: ServiceRef): string {
  return `${networkName(ref.buildId)}-${serviceKey(ref)}`;
}

function stateDir(buildId: string): string {
  return path.join(STATE_ROOT, networkName(buildId));
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
    found =
      dirs
        .map((d) => path.join(d, name))
        .find((p) => {
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

/**
 * The command run inside a namespace, seeing `hosts` as /etc/hosts (a private mount namespace
 * with the file bind-mounted, as Docker gives a container); unchanged in loopback mode.
 */
export function inNetwork(network: string | undefined, command: string[], hosts?: string): string[] {
  if (!network) return command;
  const viewed = hosts
    ? [
        systemTool('unshare'),
        '--mount',
        '--propagation',
        'private',
        '/bin/sh',
        '-c',
        '"$0" --bind "$1" /etc/hosts && shift && exec "$@"',
        systemTool('mount'),
        hosts,
        ...command,
      ]
    : command;
  return [systemTool('nsenter'), `--net=${netnsPath(network)}`, ...viewed];
}

/** Why services fall back to the host's loopback, or undefined when namespaces can be made. */
function fallbackReason(): string | undefined {
  if (process.env.CAUSEWAY_SERVICE_ISOLATION === 'loopback') return 'CAUSEWAY_SERVICE_ISOLATION=loopback';
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces need a worker running as root';
  const missing = ['ip', 'nsenter', 'unshare', 'flock', 'mount'].filter((tool) => !path.isAbsolute(systemTool(tool)));
  if (missing.length > 0) return `${missing.join(', ')} not found (install iproute2 and util-linux)`;
  return undefined;
}

function loopbackNote(why: string): string {
  return (
    `services run on the host's loopback with addresses of their own (${why}): ` +
    'builds do not collide on ports, but steps can reach other builds’ services and the outside network'
  );
}

/**
 * The address of a service instance in its build, allocated on first use and the same ever
 * after (a retried activity, or a sibling asking first, gets the one given before). Each
 * address is claimed by creating its file exclusively, so builds and services allocating at
 * once never share one; the first claim linked under the instance's key wins.
 */
async function allocate(buildId: string, key: string): Promise<string> {
  const dir = stateDir(buildId);
  const byKey = path.join(dir, 'key', key);
  const given = await fs.readFile(byKey, 'utf8').catch(() => undefined);
  if (given) return given;
  await Promise.all(['key', 'ip'].map((d) => fs.mkdir(path.join(dir, d), { recursive: true })));
  // Probing from a point derived from the key: a build's n-th service costs one try, not n.
  const span = LAST_INDEX - FIRST_INDEX + 1;
  const start = Number.parseInt(key.slice(0, 8), 16) % span;
  for (let i = 0; i < span; i++) {
    const address = addressOf(FIRST_INDEX + ((start + i) % span));
    const claim = path.join(dir, 'ip', address);
    try {
      await fs.writeFile(claim, key, { flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw err;
    }
    try {
      // link(2) publishes the whole file or fails: a reader never sees half an address.
      const tmp = `${byKey}.${process.pid}.${address}`;
      await fs.writeFile(tmp, address);
      await fs.link(tmp, byKey).finally(() => fs.rm(tmp, { force: true }));
      return address;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      await fs.rm(claim, { force: true });
      return fs.readFile(byKey, 'utf8');
    }
  }
  throw new Error(`the build has used all ${span} service addresses of ${addressOf(0)}/${PREFIX}`);
}

/**
 * The scope a service's own spec sees: outer services as they are, and this step's services
 * (itself included) at the addresses this runtime gives them, though they may not have
 * started yet. In loopback mode, the workflow's pre-allocated hosts.
 */
export async function serviceScope(
  ref: ServiceRef,
  scope: Record<string, ServiceAddress>,
  siblings: string[],
): Promise<Record<string, ServiceAddress>> {
  if (fallbackReason()) return scope;
  const out = { ...scope };
  await Promise.all(
    siblings.map(async (name) => {
      const addr = scope[name];
      if (addr) out[name] = { ...addr, host: await allocate(ref.buildId, serviceKey({ ...ref, name })), network: networkName(ref.buildId) };
    }),
  );
  return out;
}

export interface ServiceNetwork {
  /** the namespace steps join to reach the service (the build's hub); undefined in loopback mode */
  network?: string;
  /** the service's own namespace */
  netns?: string;
  /** what the service's log says about isolation */
  note: string;
}

/**
 * One shell, forked by the process helper: the hub (once per build, under the build's lock,
 * marked ready only when whole), then the service's namespace joined to the hub's bridge.
 * `$glock` is a word-split command prefix on purpose: empty once /run/netns is mounted.
 * Whatever a previous attempt left of the service's namespace is replaced.
 */
const ATTACH = `
set -e
ip=$1 hub=$2 svc=$3 veth=$4 addr=$5 bridge=$6 state=$7 glock=$8 netns=$9
if [ ! -e "$state/hub" ]; then
  exec 9>>"$state/lock"
  flock 9
  if [ ! -e "$state/hub" ]; then
    if [ -e "$netns/$hub" ]; then "$ip" netns del "$hub"; fi
    $glock "$ip" netns add "$hub"
    printf 'link set lo up\\nlink add ${BRIDGE} type bridge\\naddr add %s dev ${BRIDGE}\\nlink set ${BRIDGE} up\\n' "$bridge" | "$ip" -n "$hub" -batch -
    : >"$state/hub"
  fi
  exec 9>&-
fi
if [ -e "$netns/$svc" ]; then
  "$ip" netns del "$svc"
  "$ip" -n "$hub" link del "$veth" 2>/dev/null || true
fi
$glock "$ip" netns add "$svc"
printf 'link add %s type veth peer name eth0 netns %s\\nlink set %s master ${BRIDGE} up\\n' "$veth" "$svc" "$veth" | "$ip" -n "$hub" -batch -
printf 'link set lo up\\naddr add %s/${PREFIX} dev eth0\\nlink set eth0 up\\n' "$addr" | "$ip" -n "$svc" -batch -
`;

/**
 * Gives the service its own namespace with address `host` (from serviceScope) on the build's
 * bridge. Where namespaces cannot be made, it says so and the service runs on the host's
 * loopback, as the workflow's address says.
 */
export async function attachService(ref: ServiceRef, host: string): Promise<ServiceNetwork> {
  const why = fallbackReason();
  if (why) return { note: loopbackNote(why) };
  const hub = networkName(ref.buildId);
  const netns = serviceNetns(ref);
  try {
    const state = stateDir(ref.buildId);
    await fs.mkdir(state, { recursive: true });
    const bridge = `${addressOf(BRIDGE_INDEX)}/${PREFIX}`;
    const r = await runCommand('/bin/sh', [
      '-c',
      ATTACH,
      'sh',
      systemTool('ip'),
      hub,
      netns,
      `v${serviceKey(ref)}`.slice(0, 15),
      host,
      bridge,
      state,
      await netnsAddLock(),
      NETNS_DIR,
    ]);
    if (r.code !== 0) throw new Error(r.stderr.trim().split('\n').pop() || `exit status ${r.code ?? r.signal}`);
  } catch (err) {
    // Never the host's loopback behind the user's back: the address given out is on the bridge.
    throw new Error(`cannot make network namespace ${netns} on the bridge of ${hub}: ${(err as Error).message.split('\n')[0]}`, {
      cause: err,
    });
  }
  return {
    network: hub,
    netns,
    note: `network namespace ${netns}, address ${host} on the bridge of ${hub}: the build's services and the steps that use them reach it there; other builds and the outside network cannot`,
  };
}

/** Writes the /etc/hosts a step or service sees: the host's own entries and the services in scope by name. */
export async function writeHosts(file: string, services: Record<string, ServiceAddress>): Promise<void> {
  const own = await fs.readFile('/etc/hosts', 'utf8').catch(() => '127.0.0.1 localhost\n');
  const entries = Object.values(services).map((s) => `${s.host}\t${s.name}`);
  await fs.writeFile(file, `${own.endsWith('\n') ? own : `${own}\n`}# services in scope (causeway)\n${entries.join('\n')}\n`);
}

/** Kills what still runs in a namespace (a service's stray daemons) and deletes it; idempotent. */
async function deleteNetns(name: string): Promise<void> {
  const ip = systemTool('ip');
  await runCommand('/bin/sh', [
    '-c',
    'kill -9 $("$0" netns pids "$1" 2>/dev/null) 2>/dev/null; "$0" netns del "$1" 2>/dev/null || [ ! -e "$2" ]',
    ip,
    name,
    netnsPath(name),
  ]).then((r) => {
    if (r.code !== 0) throw new Error(`cannot delete network namespace ${name}: ${r.stderr.trim() || `exit status ${r.code ?? r.signal}`}`);
  });
}

/** Removes the service's namespace (its veth and its end on the bridge go with it); idempotent. */
export async function detachService(ref: ServiceRef): Promise<void> {
  if (fallbackReason()) return;
  await deleteNetns(serviceNetns(ref));
}

async function buildNamespaces(buildId: string): Promise<string[]> {
  const hub = networkName(buildId);
  const names = await fs.readdir(NETNS_DIR).catch(() => [] as string[]);
  return names.filter((n) => n === hub || n.startsWith(`${hub}-`));
}

/** Whether the build's services left a namespace or an allocation behind. */
export async function hasNetwork(buildId: string): Promise<boolean> {
  if ((await buildNamespaces(buildId)).length > 0) return true;
  return fs.access(stateDir(buildId)).then(
    () => true,
    () => false,
  );
}

/**
 * Removes every namespace of the build (its services' first, then the hub with its bridge) and
 * its allocations (finishBuild, the reconciler); true when there was something to remove.
 */
export async function removeNetwork(buildId: string): Promise<boolean> {
  if (!(await hasNetwork(buildId))) return false;
  const hub = networkName(buildId);
  const names = await buildNamespaces(buildId);
  await Promise.all(names.filter((n) => n !== hub).map(deleteNetns));
  if (names.includes(hub)) await deleteNetns(hub);
  await fs.rm(stateDir(buildId), { recursive: true, force: true });
  return true;
}
