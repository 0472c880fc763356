// A containerd of Causeway's own for the containerd runtime (docs/containerd.md): Debian's
// containerd with its root, state, socket and config in one directory (never the system's
// /run/containerd, nor the Kubernetes node's), a local registry (Debian's docker-registry) on
// 127.0.0.1, and registry mirrors in containerd's hosts.toml so `busybox` or
// `docker.io/library/...` resolve to that registry on a machine without internet.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { alive, request, startProcess, stopProcesses, waitFor } from './k8s/procs';
import { freePort } from './stack';

export const CONTAINERD_NAMESPACE = 'causeway';
/** The registries whose images the local registry serves (a mirror in hosts.toml each). */
const MIRRORED = ['docker.io'];
/** The image a step without one runs in, in the local registry under Docker Hub's name. */
export const DEV_DEFAULT_IMAGE = 'docker.io/library/busybox:latest';

export const ContainerdState = z.object({
  dir: z.string(),
  socket: z.string(),
  hostsDir: z.string(),
  registry: z.string(),
  processes: z.array(z.object({ name: z.string(), pid: z.number().int().positive(), log: z.string() })),
});
export type ContainerdState = z.infer<typeof ContainerdState>;

/** Where `causeway dev up --runtime containerd` keeps its containerd: CAUSEWAY_HOME/containerd. */
export function devContainerdDir(home: string): string {
  return path.join(path.resolve(home), 'containerd');
}

const TOOLS = ['containerd', 'ctr', 'runc', 'docker-registry', 'umoci', 'skopeo', 'busybox'];

function cacheDir(): string {
  return process.env.CAUSEWAY_CACHE ?? path.join(os.homedir(), '.cache', 'causeway');
}

/** The local registry's storage: shared by runs, so images are pushed once per machine. */
export function registryStorage(): string {
  return path.join(cacheDir(), 'containerd-registry');
}

function checkTools(): void {
  const missing = TOOLS.filter((t) => {
    try {
      execFileSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0)
    throw new Error(`the containerd runtime needs ${missing.join(', ')}: run bash scripts/k8s/node-packages.sh (as root)`);
  if (process.getuid?.() !== 0) throw new Error('the containerd runtime needs root (containerd, runc, mounts)');
}

function ctr(socket: string, args: string[]): string {
  return execFileSync('ctr', ['--address', socket, '--namespace', CONTAINERD_NAMESPACE, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** hosts.toml per mirrored registry: pull and resolve from the local registry over plain HTTP. */
export function writeMirrors(hostsDir: string, registry: string): void {
  for (const name of MIRRORED) {
    fs.mkdirSync(path.join(hostsDir, name), { recursive: true });
    fs.writeFileSync(
      path.join(hostsDir, name, 'hosts.toml'),
      // The local registry is the server itself, not a mirror in front of the real one: a missing
      // image is "not found" there, never a lookup of the internet's registry.
      `# ${name} served by the local registry (offline)\nserver = "http://${registry}"\n\n[host."http://${registry}"]\n  capabilities = ["pull", "resolve"]\n`,
    );
  }
}

/**
 * Starts the registry (storage shared by runs, under the cache), pushes the default image to it
 * under Docker Hub's name (`scripts/images/build.sh busybox`, built once), and a containerd in `dir`.
 */
export async function startContainerd(dir: string, repoRoot: string, log: (line: string) => void): Promise<ContainerdState> {
  checkTools();
  // The worker's containers run with crun where the host's cgroups let it (oci-runtime.ts):
  // a host booted without systemd gets the v1 hierarchies systemd would have mounted.
  execFileSync('bash', [path.join(repoRoot, 'scripts/cgroup-hierarchies.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });
  fs.mkdirSync(dir, { recursive: true });
  const processes: ContainerdState['processes'] = [];
  const state = (): ContainerdState => ({ dir, socket, hostsDir, registry, processes });
  const socket = path.join(dir, 'containerd.sock');
  const hostsDir = path.join(dir, 'certs.d');
  const registry = `127.0.0.1:${await freePort()}`;
  try {
    const storage = registryStorage();
    fs.mkdirSync(storage, { recursive: true });
    const regConfig = path.join(dir, 'registry.yml');
    fs.writeFileSync(
      regConfig,
      `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${storage}\nhttp:\n  addr: ${registry}\n`,
    );
    const reg = startProcess(dir, 'registry', 'docker-registry', ['serve', regConfig]);
    processes.push({ name: reg.name, pid: reg.pid, log: reg.log });
    writeState(state());
    await waitFor('registry', reg, async () => (await request(`http://${registry}/v2/`, {})).status === 200);
    log(`registry on ${registry}; pushing the default image (built the first time)`);
    const layout = execFileSync('bash', [path.join(repoRoot, 'scripts/images/build.sh'), 'busybox'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    })
      .trim()
      .split(' ')[1];
    execFileSync('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', layout, `docker://${registry}/library/busybox:latest`], {
      stdio: 'inherit',
    });

    writeMirrors(hostsDir, registry);
    const config = path.join(dir, 'config.toml');
    fs.writeFileSync(
      config,
      `version = 2
root = "${path.join(dir, 'root')}"
state = "${path.join(dir, 'state')}"
# Only the runtime's plugins: no CRI (kubelets use the node's own containerd).
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "${socket}"
[ttrpc]
  address = "${socket}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
`,
    );
    const daemon = startProcess(dir, 'containerd', 'containerd', ['--config', config]);
    processes.push({ name: daemon.name, pid: daemon.pid, log: daemon.log });
    writeState(state());
    await waitFor('containerd', daemon, async () => {
      try {
        ctr(socket, ['version']);
        return true;
      } catch {
        return false;
      }
    });
    log(`containerd ${socket} (registry mirrors in ${hostsDir})`);
    return state();
  } catch (err) {
    await stopContainerd(dir);
    throw err;
  }
}

function stateFile(dir: string): string {
  return path.join(dir, 'containerd.json');
}

function writeState(state: ContainerdState): void {
  fs.writeFileSync(stateFile(state.dir), JSON.stringify(state, null, 2) + '\n');
}

export function readContainerd(dir: string): ContainerdState | undefined {
  try {
    return ContainerdState.parse(JSON.parse(fs.readFileSync(stateFile(dir), 'utf8')));
  } catch {
    return undefined;
  }
}

/**
 * Kills and removes every container of Causeway's, removes their snapshots (the images' stay,
 * for the next start), stops containerd and the registry. Safe when nothing runs.
 */
export async function stopContainerd(dir: string): Promise<void> {
  const state = readContainerd(dir);
  if (!state) return;
  const daemon = state.processes.find((p) => p.name === 'containerd');
  if (daemon && alive(daemon.pid)) {
    const list = (args: string[]) => {
      try {
        return ctr(state.socket, args).split('\n').filter(Boolean);
      } catch {
        return [];
      }
    };
    for (const id of list(['containers', 'ls', '-q'])) {
      for (const args of [
        ['tasks', 'kill', '--all', '--signal', 'SIGKILL', id],
        ['tasks', 'rm', '-f', id],
        ['containers', 'rm', id],
      ]) {
        try {
          ctr(state.socket, args);
        } catch {
          // not running, or gone already
        }
      }
    }
    for (const line of list(['snapshots', 'ls']).slice(1)) {
      const [key, , kind] = line.split(/\s+/);
      if (kind !== 'Active') continue;
      try {
        ctr(state.socket, ['snapshots', 'rm', key]);
      } catch {
        // gone already
      }
    }
  }
  await stopProcesses([...state.processes].reverse());
  fs.rmSync(stateFile(dir), { force: true });
}

const DEV_WORKER_NAME = 'containerd-dev';

/**
 * `causeway dev up --runtime containerd`: the containerd and registry above in
 * CAUSEWAY_HOME/containerd (images stay there between runs), and a containerd worker.
 */
export async function startDevContainerd(
  home: string,
  endpoints: { temporalAddress: string; natsUrl: string },
  repoRoot: string,
  log: (line: string) => void,
  startWorker = true,
): Promise<ContainerdState & { reused: boolean }> {
  const dir = devContainerdDir(home);
  const existing = readContainerd(dir);
  if (existing && existing.processes.every((p) => alive(p.pid))) {
    log(`containerd already running in ${dir}; using it`);
    return { ...existing, reused: true };
  }
  await stopContainerd(dir);
  const state = await startContainerd(dir, repoRoot, log);
  // --no-worker: run your own `causeway worker --runtime containerd`, which finds this containerd in CAUSEWAY_HOME.
  if (!startWorker) return { ...state, reused: false };
  log(`starting containerd worker ${DEV_WORKER_NAME} (steps run as containers; default image ${DEV_DEFAULT_IMAGE})`);
  const worker = startProcess(
    dir,
    'worker',
    path.join(repoRoot, 'bin', 'causeway'),
    ['worker', '--runtime=containerd', `--name=${DEV_WORKER_NAME}`],
    {
      ...process.env,
      TEMPORAL_ADDRESS: endpoints.temporalAddress,
      NATS_URL: endpoints.natsUrl,
      CAUSEWAY_HOME: path.resolve(home),
    },
  );
  const withWorker = { ...state, processes: [...state.processes, { name: worker.name, pid: worker.pid, log: worker.log }] };
  writeState(withWorker);
  return { ...withWorker, reused: false };
}

/** `dev status` rows: containerd (its socket), the registry, the worker. */
export async function devContainerdStatus(
  state: ContainerdState,
): Promise<{ component: string; pid: number; alive: boolean; reachable: boolean; address: string }[]> {
  const pid = (name: string) => state.processes.find((p) => p.name === name)?.pid ?? 0;
  const rows: [string, number, string, () => Promise<boolean>][] = [
    ['containerd', pid('containerd'), state.socket, async () => (ctr(state.socket, ['version']), true)],
    ['registry', pid('registry'), state.registry, async () => (await request(`http://${state.registry}/v2/`, {})).status === 200],
    [DEV_WORKER_NAME, pid('worker'), `registry mirrors ${state.hostsDir}`, async () => true],
  ];
  return Promise.all(
    rows
      .filter(([, p]) => p > 0)
      .map(async ([component, p, address, check]) => {
        const isAlive = alive(p);
        return { component, pid: p, alive: isAlive, reachable: isAlive && (await check().catch(() => false)), address };
      }),
  );
}
