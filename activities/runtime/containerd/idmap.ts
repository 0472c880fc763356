// A task container's work directory idmapped: the build's uid shown as root, root's writes landing
// as the build's uid (idmap-mount.c). Host-run base types (a git get) write the build's files as its uid;
// a root container sees them as its own, and what it writes lands as the build's uid's, which the
// host-run put that follows reads and changes as its own. The idmapped mounts live in IDMAP_DIR
// of the step's directory (root's, 0700); the container binds that tree instead of `work`.
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { runCommand } from '../local/spawner';
import type { ViewLayers } from '../local/inputs';
import type { UserIds } from '../local/users';
import { pointsUnder } from './rootfs';

/** Where a step's idmapped mounts are, in its directory. */
export const IDMAP_DIR = 'idmap';

let helper: string | null | undefined;

/** scripts/build-helpers.sh's output beside this file in dist/ (or beside its output, under jest), if built. */
function idmapHelper(): string | null {
  helper ??=
    [
      path.join(__dirname, 'idmap-mount'),
      path.join(__dirname, '..', '..', '..', 'dist', 'activities', 'runtime', 'containerd', 'idmap-mount'),
    ].find((file) => existsSync(file)) ?? null;
  return helper;
}

/** Whether this worker can idmap: root, with the helper built. */
export function canIdmap(): boolean {
  return process.getuid?.() === 0 && idmapHelper() !== null;
}

/** Mounts each [source, target] pair idmapped for `build`'s uid. */
async function idmapMount(build: UserIds, pairs: [string, string][]): Promise<void> {
  await Promise.all(pairs.map(([, target]) => fs.mkdir(target, { recursive: true })));
  const r = await runCommand(idmapHelper()!, [String(build.uid), ...pairs.flat()]);
  if (r.code !== 0) throw new Error(`idmapped mount for uid ${build.uid}: ${r.stderr.trim()}`);
}

export interface IdmappedWork {
  /** the work directory as the container sees it */
  work: string;
  /** input views over idmapped layers at their place in `work` (an overlay cannot itself be idmapped: EINVAL) */
  views: ViewLayers;
}

/** `work` (the step's) idmapped at DIR/idmap/work; its input views go there through `views`. */
export async function idmapWork(dir: string, work: string, build: UserIds): Promise<IdmappedWork> {
  const root = path.join(dir, IDMAP_DIR);
  const mapped = path.join(root, 'work');
  await idmapMount(build, [[work, mapped]]);
  let n = 0;
  return {
    work: mapped,
    views: async (lower, target, layers) => {
      const i = n++;
      const [l, y] = [path.join(root, `lower-${i}`), path.join(root, `layers-${i}`)];
      // The overlay writes its upper and work directories as root: no one's there if root's on disk.
      await ownRootsFiles(layers, build);
      await idmapMount(build, [
        [lower, l],
        [layers, y],
      ]);
      return { lower: l, layers: y, target: path.join(mapped, path.relative(work, target)) };
    },
  };
}

/**
 * What the worker made in the step's work directory (it, the output directories, copied inputs'
 * root-owned files) made the build's: 0 on disk is no one through the idmapped mount (no id a
 * container gives a file may be root's on disk), so root in the container could not write there.
 * The views are not under `work` on the host: no input's files are walked or copied up.
 */
export async function ownRootsFiles(dir: string, build: UserIds): Promise<void> {
  const st = await fs.lstat(dir);
  if (st.uid === 0 || st.gid === 0) await fs.lchown(dir, st.uid === 0 ? build.uid : st.uid, st.gid === 0 ? build.gid : st.gid);
  if (!st.isDirectory()) return;
  const entries = await fs.readdir(dir).catch(() => [] as string[]);
  await Promise.all(entries.map((e) => ownRootsFiles(path.join(dir, e), build)));
}

/** A step's idmapped mounts among `points`, in the order they come off: the views first, then what they lie over. */
export function idmappedMounts(points: string[], dir: string): string[] {
  const root = path.join(dir, IDMAP_DIR);
  const views = pointsUnder(points, path.join(root, 'work'));
  return [...views, ...pointsUnder(points, root).filter((p) => !views.includes(p))];
}
