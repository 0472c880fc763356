// The OCI runtime spec of a step's container, built by one pure function from containerd's own
// default spec (`ctr oci spec`) and the step: process, user, mounts, privileges, limits, network.
// `ctr run --config` runs exactly this spec, so what a container gets is all written here.

/** The runc v2 shim's grouping annotation: containers with the same value share one shim (keeper.ts). */
export const GROUP_ANNOTATION = 'io.containerd.runc.v2.group';

/** The parts of an OCI runtime spec this builder reads or writes; the rest passes through. */
export interface OciSpec {
  process: {
    user: { uid: number; gid: number; additionalGids?: number[] };
    args?: string[];
    env?: string[];
    cwd: string;
    capabilities?: Record<string, string[]>;
    noNewPrivileges?: boolean;
    [k: string]: unknown;
  };
  root: { path: string; readonly?: boolean };
  hostname?: string;
  mounts: { destination: string; type: string; source: string; options?: string[] }[];
  linux: {
    resources?: { devices?: { allow: boolean; access?: string; type?: string }[]; cpu?: { shares?: number }; memory?: { limit?: number } };
    cgroupsPath?: string;
    namespaces: { type: string; path?: string }[];
    maskedPaths?: string[];
    readonlyPaths?: string[];
    seccomp?: unknown;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

export interface BindMount {
  source: string;
  destination: string;
  readonly?: boolean;
}

export interface ContainerSpecInput {
  rootfs: string;
  hostname: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  user: { uid: number; gid: number; additionalGids?: number[] };
  mounts: BindMount[];
  privileged: boolean;
  /** the capabilities the worker itself holds: a privileged container gets these (Concourse: all of root's) */
  hostCapabilities: string[];
  cpuShares?: number;
  /** the leaf cgroup of the container; its memory limit is on its parent (limits.ts) */
  cgroupsPath: string;
  /** a network namespace to join (the build's services); else a new, empty one */
  netns?: string;
  /** the runc shim group the container joins (keeper.ts): one shim for a build's containers */
  shimGroup?: string;
  /** the worker's own network (an image resource type's container): no network namespace of its own */
  hostNetwork?: boolean;
}

/**
 * Syscalls an unprivileged step may not make, on top of the capabilities it lacks: the kernel
 * interfaces Docker's default profile also refuses (keyrings, BPF, perf, modules, kexec, reboot,
 * swap, namespaces and mounts). Everything else is allowed, so any image's tools run.
 */
export const DENIED_SYSCALLS = [
  'acct',
  'add_key',
  'bpf',
  'delete_module',
  'finit_module',
  'init_module',
  'kexec_file_load',
  'kexec_load',
  'keyctl',
  'lookup_dcookie',
  'mount',
  'open_by_handle_at',
  'perf_event_open',
  'pivot_root',
  'reboot',
  'request_key',
  'setns',
  'swapoff',
  'swapon',
  'umount2',
  'unshare',
  'userfaultfd',
];

/** Linux capabilities by bit number (include/uapi/linux/capability.h), to name the worker's own. */
const CAPABILITIES = [
  'CHOWN',
  'DAC_OVERRIDE',
  'DAC_READ_SEARCH',
  'FOWNER',
  'FSETID',
  'KILL',
  'SETGID',
  'SETUID',
  'SETPCAP',
  'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE',
  'NET_BROADCAST',
  'NET_ADMIN',
  'NET_RAW',
  'IPC_LOCK',
  'IPC_OWNER',
  'SYS_MODULE',
  'SYS_RAWIO',
  'SYS_CHROOT',
  'SYS_PTRACE',
  'SYS_PACCT',
  'SYS_ADMIN',
  'SYS_BOOT',
  'SYS_NICE',
  'SYS_RESOURCE',
  'SYS_TIME',
  'SYS_TTY_CONFIG',
  'MKNOD',
  'LEASE',
  'AUDIT_WRITE',
  'AUDIT_CONTROL',
  'SETFCAP',
  'MAC_OVERRIDE',
  'MAC_ADMIN',
  'SYSLOG',
  'WAKE_ALARM',
  'BLOCK_SUSPEND',
  'AUDIT_READ',
  'PERFMON',
  'BPF',
  'CHECKPOINT_RESTORE',
];

/** The capabilities in a /proc/PID/status `CapEff:` mask, by name (CAP_...). */
export function capabilitiesOf(statusText: string): string[] {
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(statusText)?.[1];
  if (!hex) return [];
  const mask = BigInt(`0x${hex}`);
  return CAPABILITIES.filter((_, bit) => (mask >> BigInt(bit)) & 1n).map((c) => `CAP_${c}`);
}

export function containerSpec(base: OciSpec, input: ContainerSpecInput): OciSpec {
  const spec: OciSpec = structuredClone(base);
  spec.root = { path: input.rootfs, readonly: false };
  spec.hostname = input.hostname;
  spec.process.args = input.args;
  spec.process.env = Object.entries(input.env).map(([k, v]) => `${k}=${v}`);
  spec.process.cwd = input.cwd;
  spec.process.user = input.user;
  spec.mounts = [
    ...spec.mounts,
    ...input.mounts.map((m) => ({
      destination: m.destination,
      type: 'bind',
      source: m.source,
      options: ['rbind', m.readonly ? 'ro' : 'rw'],
    })),
  ];
  spec.linux.cgroupsPath = input.cgroupsPath;
  if (input.shimGroup !== undefined)
    spec.annotations = { ...(spec.annotations as Record<string, string> | undefined), [GROUP_ANNOTATION]: input.shimGroup };
  spec.linux.resources = { ...spec.linux.resources };
  if (input.cpuShares !== undefined) spec.linux.resources.cpu = { shares: input.cpuShares };
  spec.linux.namespaces = spec.linux.namespaces
    .filter((ns) => !(ns.type === 'network' && input.hostNetwork && !input.netns))
    .map((ns) => (ns.type === 'network' && input.netns ? { type: 'network', path: input.netns } : ns));
  if (input.privileged) {
    // Concourse's privileged: root in the container has the worker's capabilities, the host's
    // devices and a writable /sys, with no seccomp, masks or no_new_privs in the way.
    const caps = input.hostCapabilities;
    spec.process.capabilities = { bounding: caps, effective: caps, permitted: caps, inheritable: caps };
    spec.process.noNewPrivileges = false;
    spec.linux.resources.devices = [{ allow: true, access: 'rwm' }];
    spec.mounts = spec.mounts.map((m) =>
      m.destination === '/dev'
        ? { destination: '/dev', type: 'bind', source: '/dev', options: ['rbind', 'rw'] }
        : m.destination === '/sys'
          ? { ...m, options: (m.options ?? []).filter((o) => o !== 'ro') }
          : m,
    );
    delete spec.linux.maskedPaths;
    delete spec.linux.readonlyPaths;
    delete spec.linux.seccomp;
  } else {
    spec.linux.seccomp = {
      defaultAction: 'SCMP_ACT_ALLOW',
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
      syscalls: [{ names: DENIED_SYSCALLS, action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
    };
  }
  return spec;
}

/** uid/gid (and home) of a user as the image's /etc/passwd and /etc/group say. */
export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
  name?: string;
}

/**
 * `user` as a container runtime reads it (`name`, `uid`, `name:group`, `uid:gid`), resolved in
 * the image's own passwd and group files; root when absent. Throws with what is missing.
 */
export function resolveUser(user: string | undefined, passwd: string, group: string): ResolvedUser {
  const users = parseDb(passwd);
  const groups = parseDb(group);
  const [u, g] = (user ?? '0').split(':', 2);
  const entry = /^\d+$/.test(u) ? users.find((e) => e[2] === u) : users.find((e) => e[0] === u);
  if (!entry && !/^\d+$/.test(u)) throw new Error(`user ${u} is not in the image's /etc/passwd`);
  const uid = Number(entry ? entry[2] : u);
  let gid = entry ? Number(entry[3]) : uid === 0 ? 0 : uid;
  if (g !== undefined) {
    const ge = /^\d+$/.test(g) ? undefined : groups.find((e) => e[0] === g);
    if (!ge && !/^\d+$/.test(g)) throw new Error(`group ${g} is not in the image's /etc/group`);
    gid = Number(ge ? ge[2] : g);
  }
  const name = entry?.[0];
  const additionalGids = name
    ? groups
        .filter((e) => (e[3] ?? '').split(',').includes(name))
        .map((e) => Number(e[2]))
        .filter((n) => n !== gid)
    : [];
  return { uid, gid, additionalGids, home: entry?.[5] || (uid === 0 ? '/root' : '/'), name };
}

function parseDb(text: string): string[][] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

/** `KEY=value` lines (an image's Env) with `over` on top, as a map in the order they came. */
export function mergeEnv(image: string[], over: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of image) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return { ...out, ...over };
}
