// The images of the containerd runtime: a registry-image `image_resource` (or the worker's default
// image) pulled into containerd once and shared by every build on this worker, and its config
// (env, entrypoint, working dir, user, layers) read back from containerd's content store.
import { createHash } from 'node:crypto';
import type { ImageResource } from '../../../schemas/compiled';
import { StepErrored } from '../../errors';
import type { Ctr } from './ctr';

const DEFAULT_DOMAIN = 'docker.io';
const DEFAULT_TAG = 'latest';
const PLATFORM = { os: 'linux', architecture: 'amd64' };

/** What a container needs from its image (OCI image config), and the snapshot its root starts from. */
export interface ImageInfo {
  ref: string;
  digest: string;
  /** the committed snapshot of the image's layers */
  chainId: string;
  env: string[];
  entrypoint: string[];
  cmd: string[];
  workingDir?: string;
  user?: string;
}

export interface RegistryAuth {
  username: string;
  password: string;
}

/** A registry-image source as a pull: its reference and credentials. */
export interface ImagePull {
  ref: string;
  auth?: RegistryAuth;
}

/**
 * A reference as containerd wants it, fully qualified as Docker qualifies short names
 * (`busybox` is `docker.io/library/busybox:latest`), so a mirror in hosts.toml can serve it.
 */
export function normalizeReference(name: string): string {
  if (name === '' || /\s/.test(name)) throw new StepErrored(`image \`${name}\`: not an image reference`);
  const at = name.indexOf('@');
  const digest = at >= 0 ? name.slice(at) : '';
  let rest = at >= 0 ? name.slice(0, at) : name;
  const slash = rest.indexOf('/');
  const first = slash >= 0 ? rest.slice(0, slash) : '';
  const hasDomain = slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (!hasDomain) rest = `${DEFAULT_DOMAIN}/${slash >= 0 ? rest : `library/${rest}`}`;
  else if (first === DEFAULT_DOMAIN && !rest.slice(slash + 1).includes('/')) rest = `${DEFAULT_DOMAIN}/library/${rest.slice(slash + 1)}`;
  const lastPart = rest.slice(rest.lastIndexOf('/') + 1);
  if (!lastPart.includes(':') && !digest) rest = `${rest}:${DEFAULT_TAG}`;
  return `${rest}${digest}`;
}

/** A `registry-image` (or `docker-image`) source: repository, tag or digest, username/password. */
export function imagePull(resource: ImageResource, where: string): ImagePull {
  if (resource.type !== 'registry-image' && resource.type !== 'docker-image')
    throw new StepErrored(`${where}: image_resource type ${resource.type}: the containerd runtime pulls registry-image and docker-image`);
  const { repository, tag, digest, username, password } = resource.source as Record<string, unknown>;
  if (typeof repository !== 'string' || repository === '') throw new StepErrored(`${where}: image_resource.source.repository is required`);
  const pinned = resource.version?.digest ?? digest;
  if (pinned !== undefined && (typeof pinned !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(pinned)))
    throw new StepErrored(`${where}: image_resource digest ${String(pinned)}: expected sha256:<64 hex digits>`);
  if (tag !== undefined && typeof tag !== 'string' && typeof tag !== 'number')
    throw new StepErrored(`${where}: image_resource.source.tag must be a string`);
  if (
    (username === undefined) !== (password === undefined) ||
    (username !== undefined && (typeof username !== 'string' || typeof password !== 'string'))
  )
    throw new StepErrored(`${where}: image_resource.source needs both username and password (strings), or neither`);
  const base = normalizeReference(`${repository}${pinned ? '' : `:${tag ?? DEFAULT_TAG}`}`);
  return {
    ref: pinned ? `${base.replace(/:[^:/]+$/, '')}@${pinned}` : base,
    auth: typeof username === 'string' ? { username, password: password as string } : undefined,
  };
}

/** The image's chain id: the committed snapshot that holds its layers unpacked (OCI image-spec's ChainID). */
export function chainId(diffIds: string[]): string {
  let chain = '';
  for (const diff of diffIds) chain = chain ? `sha256:${createHash('sha256').update(`${chain} ${diff}`).digest('hex')}` : diff;
  return chain;
}

/** Registries on this machine's loopback serve plain HTTP, as Docker assumes of them. */
function isLoopback(ref: string): boolean {
  return /^(localhost|127\.\d+\.\d+\.\d+)(:\d+)?\//.test(ref);
}

interface Descriptor {
  mediaType: string;
  digest: string;
  platform?: { os: string; architecture: string };
}

/** The label of an image pulled with a login: a step without that login pulls again (and is refused) rather than use it. */
const PRIVATE_LABEL = 'causeway.private';

/**
 * Images of this worker: each pulled once, and once at a time, whatever the number of steps that
 * want it. An image that needed a login is shared only with steps whose login the registry has
 * accepted in this worker: like Concourse, whose image cache is keyed by the resource's source
 * (credentials included), a build cannot run another team's private image by naming it.
 */
export class ImageStore {
  private readonly pulls = new Map<string, Promise<ImageInfo>>();

  constructor(private readonly ctr: Ctr) {}

  /** The image, pulled if containerd does not hold it yet; `note` says what happens in the step's log. */
  get(pull: ImagePull, note: (text: string) => void): Promise<ImageInfo> {
    const key = pull.auth
      ? `${pull.ref} ${createHash('sha256').update(`${pull.auth.username}\0${pull.auth.password}`).digest('hex')}`
      : pull.ref;
    let found = this.pulls.get(key);
    if (!found) {
      found = this.load(pull, note);
      this.pulls.set(key, found);
      // A failed pull (a registry down, a refused login) is tried again by the next step.
      found.catch(() => this.pulls.delete(key));
    } else note(`image ${pull.ref}: cached on this worker`);
    return found;
  }

  private async load(pull: ImagePull, note: (text: string) => void): Promise<ImageInfo> {
    const listed = (await this.ctr.run(['images', 'ls', `name==${pull.ref}`], `image ${pull.ref}`)).trim().split('\n')[1];
    // A private image is held, but this login (or none) is not yet known good: the registry decides, in one resolve.
    if (listed === undefined || pull.auth || listed.includes(`${PRIVATE_LABEL}=true`)) {
      note(`image ${pull.ref}: pulling${pull.auth ? ` as ${pull.auth.username}` : ''}`);
      const started = Date.now();
      const args = ['images', 'pull'];
      if (this.ctr.opts.hostsDir) args.push('--hosts-dir', this.ctr.opts.hostsDir);
      if (isLoopback(pull.ref)) args.push('--plain-http');
      // The username alone: ctr asks for the password, which then never is on its command line.
      if (pull.auth) args.push('--user', pull.auth.username);
      const out = await this.ctr
        .forStep([...args, pull.ref], `pulling image ${pull.ref}`, { timeoutMs: 15 * 60_000, password: pull.auth?.password })
        .catch((err: unknown) => {
          if (err instanceof Error && / 401 Unauthorized/.test(err.message))
            err.message += pull.auth
              ? ` (the registry refused the login of ${pull.auth.username}: check image_resource.source.username and password)`
              : ' (the registry wants a login: set image_resource.source.username and password)';
          throw err;
        });
      if (pull.auth) await this.ctr.run(['images', 'label', pull.ref, `${PRIVATE_LABEL}=true`], `labelling image ${pull.ref}`);
      // ctr redraws its progress table: each layer shows up once per redraw.
      const layers = new Set(out.match(/^layer-sha256:[0-9a-f]+/gm)).size;
      note(`image ${pull.ref}: pulled and unpacked in ${Date.now() - started} ms (${layers} layer${layers === 1 ? '' : 's'})`);
    } else note(`image ${pull.ref}: already in containerd`);
    return this.inspect(pull.ref);
  }

  private async inspect(ref: string): Promise<ImageInfo> {
    // REF TYPE DIGEST SIZE PLATFORMS LABELS
    const row = (await this.ctr.run(['images', 'ls', `name==${ref}`], `image ${ref}`)).trim().split('\n')[1]?.split(/\s+/);
    if (!row) throw new StepErrored(`image ${ref}: not in containerd after its pull`);
    let manifest = await this.json<{ manifests?: Descriptor[]; config?: Descriptor }>(row[2]);
    let digest = row[2];
    if (manifest.manifests) {
      const chosen = manifest.manifests.find((m) => m.platform?.os === PLATFORM.os && m.platform.architecture === PLATFORM.architecture);
      if (!chosen) throw new StepErrored(`image ${ref}: no ${PLATFORM.os}/${PLATFORM.architecture} image in its index`);
      digest = chosen.digest;
      manifest = await this.json(chosen.digest);
    }
    if (!manifest.config) throw new StepErrored(`image ${ref}: its manifest ${digest} names no config`);
    const config = await this.json<{
      config?: { Env?: string[]; Entrypoint?: string[]; Cmd?: string[]; WorkingDir?: string; User?: string };
      rootfs: { diff_ids: string[] };
    }>(manifest.config.digest);
    const c = config.config ?? {};
    return {
      ref,
      digest,
      chainId: chainId(config.rootfs.diff_ids),
      env: c.Env ?? [],
      entrypoint: c.Entrypoint ?? [],
      cmd: c.Cmd ?? [],
      workingDir: c.WorkingDir || undefined,
      user: c.User || undefined,
    };
  }

  private async json<T>(digest: string): Promise<T> {
    return JSON.parse(await this.ctr.run(['content', 'get', digest], `content ${digest}`)) as T;
  }
}
