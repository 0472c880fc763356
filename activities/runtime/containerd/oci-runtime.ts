// The OCI runtime the runc v2 shim runs for this worker's containers: crun where it is installed
// and the host's cgroups let it run, else runc (the shim's own default). crun is a small C
// program where runc is a Go binary that re-executes itself: it creates, starts and deletes a
// container in about half runc's time here, and a container step pays create and start on its
// path (BENCHMARKS.md, "containerd runtime").
import fs from 'node:fs';
import path from 'node:path';

export const OCI_RUNTIMES = ['auto', 'runc', 'crun'] as const;
export type OciRuntimeChoice = (typeof OCI_RUNTIMES)[number];

export interface OciRuntime {
  name: 'runc' | 'crun';
  /** the binary the shim runs (its runc options' BinaryName); undefined: the shim's default, runc */
  binary?: string;
  /** why this one, for the worker's log */
  why: string;
}

/** The fix for a hybrid layout crun refuses: scripts/cgroup-hierarchies.sh, which `causeway dev up` runs. */
const CGROUP_FIX = 'mount them as cgroup v1 hierarchies, as systemd does on such hosts: bash scripts/cgroup-hierarchies.sh (as root)';

/**
 * Why crun cannot create containers on this host, or undefined when it can. crun refuses a hybrid
 * layout (v1 hierarchies, cgroup2 at /sys/fs/cgroup/unified) whose cgroup2 hierarchy still holds
 * controllers ("cgroups in hybrid mode not supported, drop all controllers from cgroupv2"): a host
 * booted without systemd leaves there those it mounts no v1 hierarchy for (hugetlb, here).
 */
export function crunCgroupProblem(cgroupRoot = '/sys/fs/cgroup'): string | undefined {
  let controllers: string;
  try {
    controllers = fs.readFileSync(path.join(cgroupRoot, 'unified', 'cgroup.controllers'), 'utf8').trim();
  } catch {
    return undefined; // not hybrid: cgroup v1 only, or cgroup v2 only
  }
  if (!controllers) return undefined;
  return `crun refuses this host's hybrid cgroup layout: cgroup2 at ${cgroupRoot}/unified holds controllers (${controllers.split(/\s+/).join(', ')}); ${CGROUP_FIX}`;
}

/** `name` on PATH, as the shell finds it; undefined when there is none. */
function onPath(name: string, envPath = process.env.PATH ?? ''): string | undefined {
  for (const dir of envPath.split(':').filter(Boolean)) {
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** The runtime for `choice`: auto takes crun when it can run here; crun asked for where it cannot is an error that says why. */
export function chooseOciRuntime(
  choice: OciRuntimeChoice,
  probe = { crun: () => onPath('crun'), cgroups: () => crunCgroupProblem() },
): OciRuntime {
  if (choice === 'runc') return { name: 'runc', why: 'asked for (--oci-runtime runc)' };
  const crun = probe.crun();
  const problem = crun ? probe.cgroups() : undefined;
  if (crun && !problem)
    return { name: 'crun', binary: crun, why: choice === 'crun' ? 'asked for (--oci-runtime crun)' : `found at ${crun}` };
  const missing = 'crun is not installed (apt-get install crun, or bash scripts/k8s/node-packages.sh)';
  if (choice === 'crun') throw new Error(`--oci-runtime crun: ${problem ?? missing}`);
  return { name: 'runc', why: `${problem ?? missing}; runc creates and starts a container ~2× slower` };
}
