// The `mock` base resource type: Concourse's test workers ship it (github.com/concourse/mock-resource)
// and most of Concourse's testflight fixtures use it. Versions are {version: <string>} plus
// `privileged: "true"` when the script runs privileged; `check-resource --from version:X` makes
// version X, because check returns the version it is given.
import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { parseDuration } from '../../schemas/units';
import { main, ResourceError, type Metadata, type Version } from './protocol';

const DEFAULT_INITIAL_VERSION = 'mock';

const files = z.record(z.string(), z.unknown());

/** mock-resource's Source: every field optional, unknown fields refused (it decodes with DisallowUnknownFields). */
export const SourceSchema = z.strictObject({
  mirror_self: z.boolean().optional(),
  initial_version: z.string().optional(),
  no_initial_version: z.boolean().optional(),
  force_version: z.string().optional(),
  create_files: files.nullish(),
  check_delay: z
    .string()
    .transform((s, ctx) => {
      try {
        return parseDuration(s);
      } catch {
        ctx.addIssue({ code: 'custom', message: `malformed check_delay duration \`${s}\`: expected a Go duration like "1s"` });
        return z.NEVER;
      }
    })
    .optional(),
  check_failure: z.string().optional(),
  metadata: z.array(z.strictObject({ name: z.string(), value: z.string() })).nullish(),
  log: z.string().optional(),
});
type Source = z.infer<typeof SourceSchema>;

const GetParamsSchema = z.strictObject({
  mirror_self_via_params: z.boolean().optional(),
  create_files_via_params: files.nullish(),
});

const PutParamsSchema = z.strictObject({
  version: z.string().optional(),
  print_env: z.boolean().optional(),
  file: z.string().optional(),
});

function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value);
  if (!r.success)
    throw new ResourceError(`invalid ${what}: ${r.error.issues.map((i) => `${i.path.join('.') || what}: ${i.message}`).join('; ')}`);
  return r.data;
}

/** As mock-resource's InitialVersion: the source's, else MIRRORED_VERSION (an image mirrored by `in`), else "mock". */
function initialVersion(source: Source, env: NodeJS.ProcessEnv): string {
  return source.initial_version || env.MIRRORED_VERSION || DEFAULT_INITIAL_VERSION;
}

/**
 * mock-resource calls a process privileged when uid 0 inside is uid 0 outside. Causeway's base
 * types run on the host without a user namespace, where that mapping always holds, so root is
 * also required: a step under its build's leased uid (or a non-root worker) is not privileged.
 */
export async function isPrivileged(uid = process.getuid?.() ?? -1, uidMap?: string): Promise<boolean> {
  if (uid !== 0) return false;
  const map = uidMap ?? (await fs.readFile('/proc/self/uid_map', 'utf8'));
  return map
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .some(([inner, outer]) => inner === '0' && outer === '0');
}

const log = (message: string) => process.stderr.write(`${message}\n`);

export async function check(
  source: Source,
  version: Version | null,
  opts: { privileged?: boolean; env?: NodeJS.ProcessEnv; sleep?: (ms: number) => Promise<void> } = {},
): Promise<Version[]> {
  if (source.log) log(source.log);
  if (source.check_delay) await (opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))))(source.check_delay);
  if (source.check_failure) throw new ResourceError(`intentionally failing to check: ${source.check_failure}`);
  let versions: Version[] = [];
  if (source.force_version) versions = [{ version: source.force_version }];
  else if (version) versions = [{ version: version.version ?? '', ...(version.privileged ? { privileged: version.privileged } : {}) }];
  else if (!source.no_initial_version) versions = [{ version: initialVersion(source, opts.env ?? process.env) }];
  const privileged = opts.privileged ?? (await isPrivileged());
  return privileged ? versions.map((v) => ({ ...v, privileged: 'true' })) : versions;
}

/** create_files values: a string as it is, anything else as JSON; START_VAR/END_VAR become (( and )). */
function fileText(content: unknown): string {
  const text = typeof content === 'string' ? content : JSON.stringify(content);
  return text.replaceAll('START_VAR', '((').replaceAll('END_VAR', '))');
}

export async function get(
  source: Source,
  version: Version,
  rawParams: unknown,
  dest: string,
  opts: { privileged?: boolean } = {},
): Promise<{ version: Version; metadata: Metadata }> {
  const params = parse(GetParamsSchema, rawParams, 'params');
  if (source.log) log(source.log);
  const privileged = opts.privileged ?? (await isPrivileged());
  if (privileged) log('fetching in a privileged container');
  await fs.mkdir(dest, { recursive: true });
  await fs.writeFile(path.join(dest, 'privileged'), `${JSON.stringify(privileged)}\n`);
  log(`fetching version: ${version.version ?? ''}`);
  await fs.writeFile(path.join(dest, 'version'), `${version.version ?? ''}\n`);
  if (source.mirror_self || params.mirror_self_via_params) {
    // mock-resource copies its own container's / here; Causeway's base types run on the host,
    // whose root is no image to copy, so rootfs/ stays empty (the local runtime runs tasks on the
    // host anyway) and metadata.json carries the version as mock-resource's does.
    log('mirroring self image: an empty rootfs/ (a base type runs on the host)');
    await fs.mkdir(path.join(dest, 'rootfs'), { recursive: true });
    await fs.writeFile(
      path.join(dest, 'metadata.json'),
      `${JSON.stringify({ env: [`MIRRORED_VERSION=${version.version ?? ''}`], user: 'root' })}\n`,
    );
  }
  const root = path.resolve(dest);
  for (const [name, content] of Object.entries({ ...source.create_files, ...params.create_files_via_params })) {
    const file = path.resolve(root, name);
    if (!file.startsWith(`${root}${path.sep}`)) throw new ResourceError(`create_files: \`${name}\` is outside the destination directory`);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, fileText(content));
  }
  return { version, metadata: source.metadata ?? [] };
}

export async function put(
  source: Source,
  rawParams: unknown,
  dir: string,
  opts: { privileged?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<{ version: Version; metadata: Metadata }> {
  const params = parse(PutParamsSchema, rawParams, 'params');
  if (source.log) log(source.log);
  if (!params.version && !params.file) throw new ResourceError('no version specified: set params.version or params.file');
  let text = params.version;
  if (!text) {
    const file = params.file ?? '';
    text = await fs.readFile(path.join(dir, file), 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new ResourceError(`error reading version from file ${file}: ${err.code ?? err.message}`);
    });
  }
  const version: Version = { version: text };
  if (opts.privileged ?? (await isPrivileged())) {
    log('pushing in a privileged container');
    version.privileged = 'true';
  }
  log(`pushing version: ${version.version}`);
  if (params.print_env) for (const [k, v] of Object.entries(opts.env ?? process.env)) log(`env: ${k}=${v ?? ''}`);
  return { version, metadata: source.metadata ?? [] };
}

if (require.main === module)
  main('mock', SourceSchema, { check: (s, v) => check(s, v), in: (s, v, p, d) => get(s, v, p, d), out: (s, p, d) => put(s, p, d) });
