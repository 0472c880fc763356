// A container's root filesystem, mounted in the step's directory for `ctr run --config` to use:
// a containerd snapshot of the image (overlay over its unpacked layers), or an overlay over a
// rootfs an earlier step produced (Concourse's `image:` artifact). Writes go to the overlay's own
// upper layer: neither the image nor the artifact changes.
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { overlayTakesVolatile } from '../../../common/overlay';
import { StepErrored } from '../../errors';
import { runCommand } from '../local/spawner';
import { isNotFound, type ContainerdApi } from './api';
import { BUILD_LABEL } from './ctr';
import { restoreOwners } from './owners';

/** A snapshot label that keeps containerd's garbage collector off a snapshot no container references yet. */
const GC_ROOT_LABEL = 'containerd.io/gc.root';

/** The rootfs of a task: where it is mounted, and the snapshot to remove with it (none for an artifact's). */
export interface Rootfs {
  target: string;
  snapshot?: string;
}

/**
 * `dir` made (if need be) root's and 0700. An image's files (setuid-root ones among them) appear
 * only under such a directory: the build's uid runs the base types' scripts on this host and must
 * find no path to them (docs/security.md).
 */
export async function closeToOthers(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await fs.chown(dir, 0, 0);
  await fs.chmod(dir, 0o700);
}

async function mounted(target: string): Promise<boolean> {
  const info = await fs.readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').some((line) => line.split(' ')[4] === target);
}

const volatileOverlay = overlayTakesVolatile();

async function mount(type: string, source: string, options: string[], target: string): Promise<void> {
  const run = (opts: string[]) => runCommand('mount', ['-t', type, ...(opts.length ? ['-o', opts.join(',')] : []), source, target]);
  // A root is scratch space: `volatile` spares its unmount a sync of the file system under the
  // upper layer (as the local runtime's input views and the real node's roots). Kernels before
  // 5.10 refuse it, and so does a work directory left by a volatile mount before a crash.
  if (type === 'overlay' && volatileOverlay && (await run([...options, 'volatile'])).code === 0) return;
  const r = await run(options);
  if (r.code !== 0) throw new Error(`mount ${type} on ${target}: ${r.stderr.trim()}`);
}

/** The image's snapshot, prepared under `key` and mounted at `target`; what an interrupted attempt left is replaced. */
export async function mountImage(api: ContainerdApi, buildId: string, key: string, chainId: string, target: string): Promise<Rootfs> {
  await unmountRootfs(api, { target, snapshot: key });
  await fs.mkdir(target, { recursive: true });
  const mounts = await api.prepareSnapshot(key, chainId, { [GC_ROOT_LABEL]: new Date().toISOString(), [BUILD_LABEL]: buildId });
  if (mounts.length !== 1) throw new Error(`snapshot ${key}: expected one mount, containerd gave ${mounts.length}`);
  const [m] = mounts;
  await mount(m.type === 'bind' ? 'none' : m.type, m.source, m.options, target);
  return { target, snapshot: key };
}

/**
 * An artifact holding `rootfs/` (and optionally Concourse's `metadata.json` with `env` and
 * `user`), as registry-image's `unpack_rootfs` writes it: an overlay over it at `target`.
 */
export async function mountArtifact(
  artifactDir: string,
  name: string,
  stepDir: string,
  target: string,
  /** a directory of the build's, the worker's only: where an artifact's owners are restored, once */
  ownedDir: string,
): Promise<{ rootfs: Rootfs; env: string[]; user?: string; ownersRestored: boolean }> {
  const lower = path.join(artifactDir, 'rootfs');
  const st = await fs.stat(lower).catch(() => undefined);
  if (!st?.isDirectory())
    throw new StepErrored(
      `image ${name}: the artifact has no rootfs/ directory (an image artifact holds rootfs/ and optionally metadata.json)`,
    );
  let env: string[] = [];
  let user: string | undefined;
  try {
    const meta = JSON.parse(await fs.readFile(path.join(artifactDir, 'metadata.json'), 'utf8')) as { env?: unknown; user?: unknown };
    if (Array.isArray(meta.env)) env = meta.env.filter((e): e is string => typeof e === 'string');
    if (typeof meta.user === 'string' && meta.user !== '') user = meta.user;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new StepErrored(`image ${name}: metadata.json: ${(err as Error).message}`);
  }
  const rootfs = { target };
  await unmountRootfs(undefined, rootfs);
  const upper = path.join(stepDir, 'rootfs-upper');
  const work = path.join(stepDir, 'rootfs-work');
  await Promise.all([upper, work].map((d) => fs.rm(d, { recursive: true, force: true })));
  await Promise.all([upper, work, target].map((d) => fs.mkdir(d, { recursive: true })));
  // A rootfs that is not root's was unpacked without privileges (registry-image's `in`): its
  // owners come back in a layer of the worker's over it (owners.ts), made once per artifact.
  const rootless = st.uid !== 0;
  const lowers = rootless ? [await ownedLayer(lower, st.uid, name, ownedDir), lower] : [lower];
  const options = [`lowerdir=${lowers.join(':')}`, `upperdir=${upper}`, `workdir=${work}`];
  // metacopy: the owned layer holds the files' metadata only; their data stays in the artifact.
  await mount('overlay', 'overlay', rootless ? [...options, 'metacopy=on'] : options, target);
  return { rootfs, env, user, ownersRestored: rootless };
}

/**
 * The artifact's owners as a layer over it: an overlay's upper directory in which each file was
 * given its owner (owners.ts), with metacopy, so it holds inodes' metadata and no data (postgres:
 * 10,500 files, 42 MB against 413 MB copied). Made once per artifact and used as a lower layer
 * by every step that runs in it; under `ownedDir` (root's, 0700), so a setuid file made root's
 * again is out of the build's uid's reach. Made aside and renamed into place: a concurrent step
 * of the same artifact takes the first one made, an interrupted one is never taken.
 */
async function ownedLayer(lower: string, unpacker: number, name: string, ownedDir: string): Promise<string> {
  const done = path.join(ownedDir, createHash('sha256').update(lower).digest('hex').slice(0, 32));
  const layer = path.join(done, 'upper');
  if (
    await fs.stat(layer).then(
      () => true,
      () => false,
    )
  )
    return layer;
  await closeToOthers(ownedDir);
  const tmp = `${done}.${randomUUID()}`;
  const merged = path.join(tmp, 'merged');
  await Promise.all(['upper', 'work', 'merged'].map((d) => fs.mkdir(path.join(tmp, d), { recursive: true })));
  await mount(
    'overlay',
    'overlay',
    [`lowerdir=${lower}`, `upperdir=${path.join(tmp, 'upper')}`, `workdir=${path.join(tmp, 'work')}`, 'metacopy=on'],
    merged,
  );
  try {
    await restoreOwners(merged, unpacker, `image ${name}`);
  } finally {
    await unmountRootfs(undefined, { target: merged });
  }
  await fs.rename(tmp, done).catch(async (err: unknown) => {
    // Another step of the same artifact made it first.
    if (!['ENOTEMPTY', 'EEXIST'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
  });
  await fs.rm(tmp, { recursive: true, force: true });
  return layer;
}

/** Unmounts the rootfs and removes its snapshot; idempotent. */
export async function unmountRootfs(api: ContainerdApi | undefined, rootfs: Rootfs): Promise<void> {
  if (await mounted(rootfs.target)) {
    const r = await runCommand('umount', [rootfs.target]);
    // Busy only while a process still holds it: detach it, the kernel frees it when they go.
    if (r.code !== 0) await runCommand('umount', ['-l', rootfs.target]);
  }
  if (api && rootfs.snapshot) await removeSnapshot(api, rootfs.snapshot);
}

/** Removes a root's snapshot; idempotent. */
export async function removeSnapshot(api: ContainerdApi, key: string): Promise<void> {
  await api.removeSnapshot(key).catch((err: unknown) => {
    if (!isNotFound(err)) throw err;
  });
}

/** This host's mount points (/proc/self/mountinfo's), read once for a whole removal. */
export async function mountPoints(): Promise<string[]> {
  const info = await fs.readFile('/proc/self/mountinfo', 'utf8');
  return info
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined);
}

/** Of `points`, those under `dir`, deepest first. */
export function pointsUnder(points: string[], dir: string): string[] {
  return points.filter((p) => p.startsWith(`${dir}/`)).sort((a, b) => b.length - a.length);
}

/** Mount points under `dir` (a build's directory), deepest first: what the build's end unmounts. */
export async function mountsUnder(dir: string): Promise<string[]> {
  return pointsUnder(await mountPoints(), dir);
}

/**
 * Unmounts `targets` in their order with one `umount` (a process per mount cost a step's removal
 * ~10 ms each on a loaded machine); one still mounted after it is busy while a process the step
 * left holds it: detached, the kernel frees it when they go.
 */
export async function unmountAll(targets: string[]): Promise<void> {
  if (targets.length === 0) return;
  if ((await runCommand('umount', targets)).code === 0) return;
  const left = new Set(await mountPoints());
  for (const target of targets.filter((t) => left.has(t))) {
    const lazy = await runCommand('umount', ['-l', target]);
    if (lazy.code !== 0) throw new Error(`cannot unmount ${target}: ${lazy.stderr.trim()} (unmount it by hand: umount -l ${target})`);
  }
}
