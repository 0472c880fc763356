// The `registry-image` base resource type, as Concourse's registry-image resource: versions are
// {digest} of `repository:tag`; in fetches that image as `rootfs/` + `metadata.json` (format
// rootfs, what a task's `image:` runs in) or as an OCI tarball `image.tar` (format oci); out
// pushes an OCI tarball from the put's inputs. Debian's skopeo and umoci do the registry and
// layer work, so no daemon is needed and a non-root step can run it (umoci --rootless).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import { main, ResourceError, type Metadata, type Version } from './protocol';

const exec = promisify(execFile);

export const SourceSchema = z.strictObject({
  repository: z
    .string({ error: 'registry-image needs source.repository (e.g. 127.0.0.1:5000/busybox)' })
    .min(1, 'registry-image needs source.repository (e.g. 127.0.0.1:5000/busybox)'),
  tag: z.string().min(1).default('latest'),
  /** plain HTTP, or HTTPS without verifying the certificate (a local registry) */
  insecure: z.boolean().default(false),
  username: z.string().optional(),
  password: z.string().optional(),
});
export type Source = z.infer<typeof SourceSchema>;

const InParams = z.strictObject({
  format: z.enum(['rootfs', 'oci']).default('rootfs'),
  skip_download: z.boolean().default(false),
});
const OutParams = z.strictObject({
  image: z
    .string({ error: 'put needs params.image: the path of an OCI image tarball among its inputs' })
    .min(1, 'put needs params.image: the path of an OCI image tarball among its inputs'),
});

/** A step's params, or a ResourceError naming each problem (the step's log shows it). */
function paramsOf<T>(schema: z.ZodType<T>, raw: unknown): T {
  const parsed = schema.safeParse(raw ?? {});
  if (parsed.success) return parsed.data;
  throw new ResourceError(`invalid params: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'params'}: ${i.message}`).join('; ')}`);
}

/** Runs skopeo with the source's TLS and credential flags (credentials in a 0600 auth file, never on its command line). */
async function skopeo(source: Source, direction: 'src' | 'dest' | 'inspect', args: string[]): Promise<string> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'registry-image-'));
  try {
    const prefix = direction === 'inspect' ? '' : `${direction}-`;
    const flags = [`--${prefix}tls-verify=${!source.insecure}`];
    if (source.username !== undefined || source.password !== undefined) {
      if (!source.username || source.password === undefined)
        throw new ResourceError('source.username and source.password go together: set both, or neither');
      const authfile = path.join(tmp, 'auth.json');
      const registry = source.repository.split('/')[0];
      const auth = Buffer.from(`${source.username}:${source.password}`).toString('base64');
      await fs.writeFile(authfile, JSON.stringify({ auths: { [registry]: { auth } } }), { mode: 0o600 });
      flags.push(`--${prefix}authfile`, authfile);
    }
    const [command, ...rest] = args;
    const { stdout } = await exec('skopeo', [command, ...flags, ...rest], { maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' });
    return stdout;
  } catch (err) {
    if (err instanceof ResourceError) throw err;
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new ResourceError(`skopeo ${args[0]} ${args[args.length - 1]} failed: ${stderr || (err as Error).message}`);
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

/** The manifest digest of repository:tag, as the registry serves it (an index for a multi-platform image). */
async function digestOf(source: Source): Promise<string> {
  const raw = await skopeo(source, 'inspect', ['inspect', '--raw', `docker://${source.repository}:${source.tag}`]);
  return `sha256:${createHash('sha256').update(raw).digest('hex')}`;
}

/** check: the tag's current digest (Concourse's registry-image reports only the newest for a tag). */
export async function check(source: Source): Promise<Version[]> {
  return [{ digest: await digestOf(source) }];
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/** in: the image at the version's digest into `dest`, with the files Concourse's resource writes (repository, tag, digest). */
export async function get(
  source: Source,
  version: Version,
  rawParams: unknown,
  dest: string,
): Promise<{ version: Version; metadata: Metadata }> {
  const params = paramsOf(InParams, rawParams);
  if (!DIGEST.test(version.digest ?? ''))
    throw new ResourceError(`version ${JSON.stringify(version)}: expected {digest: sha256:<64 hex digits>}`);
  await fs.mkdir(dest, { recursive: true });
  await fs.writeFile(path.join(dest, 'repository'), source.repository);
  await fs.writeFile(path.join(dest, 'tag'), source.tag);
  await fs.writeFile(path.join(dest, 'digest'), version.digest);
  const ref = `docker://${source.repository}@${version.digest}`;
  if (!params.skip_download) {
    if (params.format === 'oci') {
      await skopeo(source, 'src', ['copy', '--quiet', ref, `oci-archive:${path.join(dest, 'image.tar')}:${source.tag}`]);
    } else {
      const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'registry-image-layout-'));
      try {
        const layout = path.join(tmp, 'layout');
        await skopeo(source, 'src', ['copy', '--quiet', ref, `oci:${layout}:image`]);
        const rootless = process.getuid?.() !== 0 ? ['--rootless'] : [];
        await exec('umoci', ['raw', 'unpack', ...rootless, '--image', `${layout}:image`, path.join(dest, 'rootfs')]).catch(
          (err: unknown) => {
            throw new ResourceError(
              `umoci could not unpack ${ref}: ${(err as { stderr?: string }).stderr?.trim() ?? (err as Error).message}`,
            );
          },
        );
        const config = await imageConfig(layout);
        // Concourse's registry-image: what a task in this rootfs gets from the image's config.
        await fs.writeFile(path.join(dest, 'metadata.json'), JSON.stringify({ env: config.Env ?? [], user: config.User ?? '' }));
      } finally {
        await fs.rm(tmp, { recursive: true, force: true });
      }
    }
  }
  return {
    version: { digest: version.digest },
    metadata: [
      { name: 'repository', value: source.repository },
      { name: 'tag', value: source.tag },
    ],
  };
}

/** The `config` of the OCI layout's only image (its Env and User). */
async function imageConfig(layout: string): Promise<{ Env?: string[]; User?: string }> {
  const blob = async (digest: string) =>
    JSON.parse(await fs.readFile(path.join(layout, 'blobs', ...digest.split(':')), 'utf8')) as Record<string, unknown>;
  const index = JSON.parse(await fs.readFile(path.join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = (await blob(index.manifests[0].digest)) as { config: { digest: string } };
  const image = (await blob(manifest.config.digest)) as { config?: { Env?: string[]; User?: string } };
  return image.config ?? {};
}

/** out: pushes the OCI tarball `params.image` (relative to the put's directory) to repository:tag; the version is the pushed digest. */
export async function put(source: Source, rawParams: unknown, dir: string): Promise<{ version: Version; metadata: Metadata }> {
  const params = paramsOf(OutParams, rawParams);
  const file = path.resolve(dir, params.image);
  if (file !== dir && !file.startsWith(`${dir}${path.sep}`))
    throw new ResourceError(`params.image ${params.image} leaves the put's directory`);
  await fs.access(file).catch(() => {
    throw new ResourceError(
      `params.image ${params.image}: no such file among the put's inputs (an OCI image tarball, e.g. from a task's output)`,
    );
  });
  await skopeo(source, 'dest', ['copy', '--quiet', `oci-archive:${file}`, `docker://${source.repository}:${source.tag}`]);
  return {
    version: { digest: await digestOf(source) },
    metadata: [
      { name: 'repository', value: source.repository },
      { name: 'tag', value: source.tag },
    ],
  };
}

if (require.main === module) main('registry-image', SourceSchema, { check, in: get, out: put });
