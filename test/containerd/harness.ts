// A worker of the containerd runtime against the run's containerd (setup/global-setup.ts).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import type { WorkerCredentials } from '../../activities/creds';
import { readBuild } from '../../common/build-log';
import { CONTAINERD_NAMESPACE, DEV_DEFAULT_IMAGE, readContainerd, type ContainerdState } from '../../cli/dev/containerd';
import { startHarness, type Harness } from '../workflows/harness';

export function containerd(): ContainerdState {
  const dir = process.env.CAUSEWAY_TEST_CONTAINERD;
  const state = dir ? readContainerd(dir) : undefined;
  if (!state) throw new Error('no containerd: run this test through the jest "containerd" project (test/containerd)');
  return state;
}

export function startContainerdHarness(
  opts: { killGraceMs?: number; defaultImage?: string | null; credentials?: WorkerCredentials } = {},
): Promise<Harness> {
  const c = containerd();
  return startHarness({
    killGraceMs: opts.killGraceMs,
    credentials: opts.credentials,
    containerd: {
      socket: c.socket,
      hostsDir: c.hostsDir,
      defaultImage: opts.defaultImage === null ? undefined : (opts.defaultImage ?? DEV_DEFAULT_IMAGE),
    },
  });
}

/** `ctr` against the run's containerd, in Causeway's namespace. */
export function ctr(args: string[]): string {
  return execFileSync('ctr', ['--address', containerd().socket, '--namespace', CONTAINERD_NAMESPACE, ...args], { encoding: 'utf8' });
}

/** Mounts under the build's directory in CAUSEWAY_HOME that are still there. */
export function mountsOf(home: string, buildId: string): string[] {
  const dir = path.join(home, 'builds', buildId);
  return execFileSync('cat', ['/proc/self/mountinfo'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => p !== undefined && p.startsWith(`${dir}/`));
}

/** A task config running `sh -c script` in `image` (a registry-image repository). */
export function task(name: string, script: string, extra: Record<string, unknown> = {}, config: Record<string, unknown> = {}): string {
  return JSON.stringify({ task: name, config: { platform: 'linux', run: { path: 'sh', args: ['-c', script] }, ...config }, ...extra });
}

export const BUSYBOX = { type: 'registry-image', source: { repository: 'busybox' } };

/** Causeway's own notes in a step's log (collectLogs leaves them out). */
export async function notesOf(nc: NatsConnection, buildId: string, stepId: string): Promise<string> {
  let out = '';
  for await (const r of readBuild(nc, buildId, { follow: false }))
    if (r.kind === 'log' && r.stream === 'causeway' && r.stepId === stepId) out += Buffer.from(r.data).toString('utf8');
  return out;
}

/**
 * The `-id` of every runc shim of this run's containerd seen until `stop`: the container that
 * started each (containerd runs the shim binary's short `start` command for every task, which hands
 * over to the running shim of the task's group, and its `delete` command after each: not shims).
 */
export async function watchShims(stop: { done: boolean }): Promise<Set<string>> {
  const address = `-address ${containerd().socket}`;
  const ids = new Set<string>();
  while (!stop.done) {
    for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      let cmd: string;
      try {
        cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      } catch {
        continue; // gone meanwhile
      }
      const id = / -id (\S+)/.exec(cmd)?.[1];
      if (cmd.includes('containerd-shim-runc-v2') && cmd.includes(address) && !/ (start|delete)$/.test(cmd.trim()) && id) ids.add(id);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  return ids;
}

/** The shims `watchShims` saw, but for other builds' keepers' (other test files' builds run meanwhile). */
export function shimsOf(seen: Set<string>, keeper: string): string[] {
  return [...seen].filter((id) => id === keeper || !id.startsWith('cw-keep-'));
}
