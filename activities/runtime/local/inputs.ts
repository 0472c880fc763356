// A step's inputs on one machine: a copy-on-write view of the producer's output instead of a copy.
// An overlay mount (lowerdir = the producer's output, upper and work layers in the consumer's step
// directory) costs one mount and, volatile, an unmount without a sync, whatever the artifact's
// size, where `cp` of 200 MB took seconds on this ext4 (no reflinks). The consumer's writes land
// in its own upper layer, so the producer's files stay as every other consumer sees them
// (Concourse: each step gets its own copy-on-write volume). The mounts live as long as the step:
// the step's end, a failed start, a retried attempt and the reconciler remove them; after a
// reboot none are left, and a re-run step mounts again.
import { lchownSync, lstatSync, readdirSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { copyArtifact } from '../../artifacts';
import { overlayTakesVolatile } from '../../../common/overlay';
import { runCommand } from './spawner';
import type { UserIds } from './users';

/** Where an input's upper and work layers go, in the step's directory (beside `work`, never in it). */
export const LAYERS_DIR = 'layers';
/** Characters overlayfs's and mount's option syntax would read as separators: such paths are copied. */
const OPTION_SYNTAX = /[,:\\\s]/;

export interface InputPlacement {
  /** where the producer's output is */
  from: string;
  /** where the step sees it (in its work directory) */
  to: string;
}

/**
 * Where a view's overlay goes and what it lies over, when the consumer sees its work directory
 * through another mount (containerd's idmapped one): given the lower, the target and the layers
 * directory on the host, those to mount with.
 */
export type ViewLayers = (lower: string, target: string, layers: string) => Promise<{ lower: string; target: string; layers: string }>;

/**
 * Places each input at its path: an overlay mount when this host allows it and nothing else of
 * the step lies at, above or below the input's path (an output there would live in the mount and
 * vanish with it; another input or a cache would be hidden by it), else a copy as before.
 * `others` are the step's other paths (outputs, caches) in its work directory. Returns the inputs mounted.
 */
export async function placeInputs(stepDir: string, inputs: InputPlacement[], others: string[], layers?: ViewLayers): Promise<string[]> {
  const all = [...inputs.map((i) => i.to), ...others];
  const views: string[] = [];
  for (const [i, input] of inputs.entries()) {
    const alone = all.every((p, j) => j === i || !overlaps(p, input.to));
    if (alone && (await mountOverlay(input.from, input.to, path.join(stepDir, LAYERS_DIR, String(i)), layers))) views.push(input.to);
    else await copyArtifact(input.from, input.to);
  }
  return views;
}

function overlaps(a: string, b: string): boolean {
  return a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);
}

/** Whether this process may mount at all (root): decided once, so a worker without the right pays no failed mount per input. */
let canMount: boolean | undefined;

const volatileOverlay = overlayTakesVolatile();

/** Mounts an overlay of `lower` at `target`; false (and nothing mounted) where it cannot. */
async function mountOverlay(lower: string, target: string, layers: string, over?: ViewLayers): Promise<boolean> {
  canMount ??= process.getuid?.() === 0;
  if (!canMount || [lower, target, layers].some((p) => OPTION_SYNTAX.test(p))) return false;
  await Promise.all([path.join(layers, 'upper'), path.join(layers, 'work'), target].map((d) => fs.mkdir(d, { recursive: true })));
  // The view's root takes the upper layer's owner and mode: the producer's, as a copy would have them.
  const st = await fs.stat(lower);
  await fs.chown(path.join(layers, 'upper'), st.uid, st.gid);
  await fs.chmod(path.join(layers, 'upper'), st.mode & 0o7777);
  const at = over ? await over(lower, target, layers) : { lower, target, layers };
  const options = `lowerdir=${at.lower},upperdir=${path.join(at.layers, 'upper')},workdir=${path.join(at.layers, 'work')}`;
  // `volatile`: the view is scratch space, so overlayfs skips syncing the file system under its
  // upper layer, which its unmount at the step's end otherwise does: writing back every dirty page
  // there, the producer's fresh output included (umount 231 ms against 3 ms with 200 MB just
  // written, on this ext4). Kernels before 5.10 refuse the option (so they are not asked), and a
  // layer left by a volatile mount before a crash refuses a new one: those mount without it, or
  // copy as before.
  for (const extra of [...(volatileOverlay ? [',volatile'] : []), '']) {
    const r = await runCommand('mount', ['-t', 'overlay', 'overlay', '-o', `${options}${extra}`, at.target]);
    if (r.code === 0) return true;
  }
  return false;
}

/** Mount points at or under `dir`, deepest first. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const info = await fs.readFile('/proc/self/mountinfo', 'utf8');
  return (
    info
      .split('\n')
      // The mount point is the fifth field, with space, tab, newline and backslash octal-escaped.
      .map((line) => line.split(' ')[4]?.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8))))
      .filter((p): p is string => p !== undefined && (p === dir || p.startsWith(`${dir}/`)))
      .sort((a, b) => b.length - a.length)
  );
}

/** Unmounts every mount at or under `dir` (a step's or a build's directory); what it unmounted. */
export async function unmountUnder(dir: string): Promise<string[]> {
  const targets = await mountsUnder(dir);
  for (const target of targets) {
    const r = await runCommand('umount', [target]);
    // Busy only while a process the step left behind holds it: detach it, the kernel frees it when they go.
    if (r.code !== 0) {
      const lazy = await runCommand('umount', ['-l', target]);
      if (lazy.code !== 0) throw new Error(`cannot unmount ${target}: ${lazy.stderr.trim()} (unmount it by hand: umount -l ${target})`);
    }
  }
  return targets;
}

/**
 * chown -R that leaves alone what is already owned so: a chown through an input's view copies
 * the file up into the step's layer (its data too), which would turn the view back into a copy.
 * A producer of the same build wrote its output as the build's uid, so its files stay untouched.
 */
export async function ownTree(dir: string, ids: UserIds): Promise<void> {
  // The top synchronously: a step's work dir is usually empty or holds a few entries, and each
  // thread-pool round trip waited for a CPU on a loaded machine (bench:step-overhead). What lies
  // below (an input's copied tree) is walked asynchronously, not blocking the worker.
  const st = lstatSync(dir);
  if (st.uid !== ids.uid || st.gid !== ids.gid) lchownSync(dir, ids.uid, ids.gid);
  if (!st.isDirectory()) return;
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  await Promise.all(entries.map((e) => ownSubtree(path.join(dir, e), ids)));
}

async function ownSubtree(dir: string, ids: UserIds): Promise<void> {
  const st = await fs.lstat(dir);
  if (st.uid !== ids.uid || st.gid !== ids.gid) await fs.lchown(dir, ids.uid, ids.gid);
  if (!st.isDirectory()) return;
  const entries = await fs.readdir(dir).catch(() => [] as string[]);
  await Promise.all(entries.map((e) => ownSubtree(path.join(dir, e), ids)));
}
