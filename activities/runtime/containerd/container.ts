// What a task's and a service's container share: its image (pulled, or an artifact's rootfs)
// mounted in its directory, its user from the image, its env, and the removal of the container
// and of what it leaves on the host.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ImageResource } from '../../../schemas/compiled';
import { paths } from '../../deps';
import { StepErrored } from '../../errors';
import type { Artifacts } from '../../types';
import { TRUST_BUILD_FILES } from '../container-env';
import { removeCgroups } from './cgroup';
import { idmappedMounts } from './idmap';
import { isNotFound } from './api';
import type { ContainerdContext } from './context';
import { imagePull, normalizeReference, type ImageInfo } from './image';
import { closeToOthers, mountArtifact, mountImage, mountPoints, pointsUnder, removeSnapshot, unmountAll, type Rootfs } from './rootfs';
import type { StepClock } from './phases';
import { mergeEnv, resolveUser, type ResolvedUser } from './spec';

export const META_FILE = 'container.json';
export const SPEC_FILE = 'spec.json';
/** where a container's working directory is, as Concourse puts it */
export const BUILD_ROOT = '/tmp/build';
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** What a container's start decided, read again by a re-attaching attempt and by the clean-up. */
export interface ContainerMeta {
  id: string;
  outputs: Artifacts;
  rootfs: Rootfs;
  memoryLimited: boolean;
}

export type ImageSource = ImageInfo | { artifact: string; name: string };

/** What a step or service asks for: `image:` (an artifact holding a rootfs), image_resource, rootfs_uri. */
export interface WantedImage {
  image?: string;
  image_resource?: ImageResource;
  rootfs_uri?: string;
}

/** The image: `image:` first, then image_resource, then rootfs_uri, then the worker's default. */
export async function resolveImage(
  cx: ContainerdContext,
  where: string,
  want: WantedImage,
  artifacts: Artifacts,
  note: (text: string) => void,
): Promise<ImageSource> {
  if (want.image) {
    const ref = artifacts[want.image];
    if (!ref)
      throw new StepErrored(`${where}: image ${want.image}: no such artifact (available: ${Object.keys(artifacts).join(', ') || 'none'})`);
    if (ref.kind !== 'dir')
      throw new StepErrored(`${where}: image ${want.image} is an output of pod ${ref.pod}, which the containerd runtime cannot read`);
    if (want.image_resource) note(`image ${want.image} (the step's image) is used instead of image_resource`);
    return { artifact: ref.path, name: want.image };
  }
  if (want.image_resource) return cx.images.get(imagePull(want.image_resource, where), note);
  if (want.rootfs_uri) {
    const m = /^docker:\/\/\/([^#]+)(?:#(.+))?$/.exec(want.rootfs_uri);
    if (!m)
      throw new StepErrored(
        `${where}: rootfs_uri ${want.rootfs_uri}: the containerd runtime takes docker:///REPOSITORY[#TAG]; use image_resource`,
      );
    return cx.images.get({ ref: normalizeReference(`${m[1]}:${m[2] ?? 'latest'}`) }, note);
  }
  if (cx.defaultImage) return cx.images.get({ ref: normalizeReference(cx.defaultImage) }, note);
  throw new StepErrored(`${where}: no image: set image_resource (type registry-image), or start the worker with --default-image`);
}

export interface MountedRoot {
  rootfs: Rootfs;
  env: string[];
  user?: string;
  workingDir?: string;
}

/**
 * The image mounted at DIR/rootfs: a snapshot of a pulled image, or an overlay over an artifact's
 * rootfs. With `spare`, a pulled image's root is the build's spare one when there is one (spare.ts).
 */
export async function mountRoot(
  cx: ContainerdContext,
  image: ImageSource,
  buildId: string,
  id: string,
  dir: string,
  note: (text: string) => void,
  opts: { spare?: boolean } = {},
): Promise<MountedRoot> {
  const target = path.join(dir, 'rootfs');
  // The root, its upper layer and what the container writes live here: root's only. The
  // container reaches its work directory through its bind mount, not through this one.
  await closeToOthers(dir);
  if ('artifact' in image) {
    const owned = path.join(paths.build(cx.deps.home, buildId), 'owned-roots');
    const { ownersRestored, ...mounted } = await mountArtifact(image.artifact, image.name, dir, target, owned);
    note(`image: the rootfs of artifact ${image.name}${ownersRestored ? ", its files' owners restored from the rootless unpack" : ''}`);
    return mounted;
  }
  const rootfs =
    (opts.spare ? await cx.spares.take(buildId, image.chainId) : undefined) ??
    (await mountImage(cx.api, buildId, id, image.chainId, target));
  return { rootfs, env: image.env, user: image.user, workingDir: image.workingDir };
}

/** run.user (else the image's) in the image's own passwd and group files. */
export async function userInImage(root: MountedRoot, user: string | undefined, where: string): Promise<ResolvedUser> {
  const [passwd, group] = await Promise.all(
    ['passwd', 'group'].map((f) => fs.readFile(path.join(root.rootfs.target, 'etc', f), 'utf8').catch(() => '')),
  );
  try {
    return resolveUser(user ?? root.user, passwd, group);
  } catch (err) {
    throw new StepErrored(`${where}: run.user: ${(err as Error).message}`);
  }
}

/**
 * The image's env with PATH (when it has none), HOME and `over` on top. Without an idmapped work
 * directory (idmap.ts: a service's, or a worker without the helper) the build's files are not
 * the container user's, and git trusts them only through TRUST_BUILD_FILES.
 */
export function containerEnv(
  root: MountedRoot,
  user: ResolvedUser,
  over: Record<string, string>,
  opts: { idmapped?: boolean } = {},
): Record<string, string> {
  return mergeEnv(root.env, {
    ...(root.env.some((e) => e.startsWith('PATH=')) ? {} : { PATH: DEFAULT_PATH }),
    HOME: user.home,
    ...(opts.idmapped ? {} : TRUST_BUILD_FILES),
    ...over,
  });
}

export async function readMeta(dir: string): Promise<ContainerMeta | undefined> {
  return fs
    .readFile(path.join(dir, META_FILE), 'utf8')
    .then((t) => JSON.parse(t) as ContainerMeta)
    .catch(() => undefined);
}

/** Unmounts the inputs' views and the rootfs, removes the snapshot and the cgroups a start left; idempotent. */
export async function cleanUpContainer(cx: ContainerdContext, dir: string, clock?: StepClock): Promise<void> {
  const meta = await readMeta(dir);
  if (!meta) return;
  // All of the step's mounts with one umount, each before what it lies on: the idmapped work
  // directory's (idmap.ts), the views of a work directory that is not idmapped, the root.
  const points = await mountPoints();
  const root = points.includes(meta.rootfs.target) ? [meta.rootfs.target] : [];
  await unmountAll([...idmappedMounts(points, dir), ...pointsUnder(points, path.join(dir, 'work')), ...root]);
  clock?.mark('unmount');
  if (meta.rootfs.snapshot) await removeSnapshot(cx.api, meta.rootfs.snapshot);
  clock?.mark('snapshot remove');
  await removeCgroups(meta.id);
  clock?.mark('cgroups');
}

/** Removes the container's task and the container from containerd; idempotent. */
export async function removeContainer(cx: ContainerdContext, id: string): Promise<void> {
  const ignoreNotFound = (err: unknown) => {
    if (!isNotFound(err)) throw err;
  };
  await cx.api.killTask(id, 'SIGKILL').catch(() => undefined);
  await cx.api.deleteTask(id).catch(ignoreNotFound);
  await cx.api.deleteContainer(id).catch(ignoreNotFound);
}
