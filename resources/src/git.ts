// The `git` base resource type, with the source, get and put options of Concourse's
// git-resource that CI plans use most. Versions are commits: {ref: <sha>}.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import { main, ResourceError, type Metadata, type Version } from './protocol';

const exec = promisify(execFile);

const SourceSchema = z.strictObject({
  uri: z.string().min(1, 'the repository to fetch (https://, ssh, git@host:path or file://)'),
  branch: z.string().min(1).optional(),
  paths: z.array(z.string()).optional(),
  ignore_paths: z.array(z.string()).optional(),
  tag_filter: z.string().min(1).optional(),
  username: z.string().optional(),
  password: z.string().optional(),
  private_key: z.string().optional(),
  git_config: z.array(z.object({ name: z.string(), value: z.string() })).optional(),
  skip_ssl_verification: z.boolean().optional(),
});
type Source = z.infer<typeof SourceSchema>;

const GetParams = z.object({ depth: z.number().int().min(1).optional(), submodules: z.unknown().optional() }).loose();
const PutParams = z.strictObject({
  repository: z.string().min(1, 'put needs params.repository: the directory of the repository to push'),
  tag: z.string().optional(),
  tag_prefix: z.string().optional(),
  rebase: z.boolean().optional(),
  branch: z.string().optional(),
  force: z.boolean().optional(),
  annotate: z.string().optional(),
});

/** How many times a rejected push is rebased and tried again. */
const PUSH_ATTEMPTS = 5;

/** Environment for every git command: credentials, and repositories owned by other users allowed (file:// in CI). */
async function gitEnv(source: Source, tmp: string): Promise<NodeJS.ProcessEnv> {
  const config: [string, string][] = [
    ['safe.directory', '*'],
    ...(source.git_config ?? []).map((c) => [c.name, c.value] as [string, string]),
  ];
  if (source.skip_ssl_verification) config.push(['http.sslVerify', 'false']);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    GIT_TERMINAL_PROMPT: '0',
    GIT_AUTHOR_NAME: process.env.GIT_AUTHOR_NAME ?? 'Causeway',
    GIT_AUTHOR_EMAIL: process.env.GIT_AUTHOR_EMAIL ?? 'causeway@localhost',
    GIT_COMMITTER_NAME: process.env.GIT_COMMITTER_NAME ?? 'Causeway',
    GIT_COMMITTER_EMAIL: process.env.GIT_COMMITTER_EMAIL ?? 'causeway@localhost',
    GIT_CONFIG_COUNT: String(config.length),
  };
  config.forEach(([k, v], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = k;
    env[`GIT_CONFIG_VALUE_${i}`] = v;
  });
  // The upload-pack of a file:// fetch reads safe.directory only from global or system config
  // (git 2.39: "detected dubious ownership" despite GIT_CONFIG_*): steps run under their build's
  // uid, so a repository on the host is always another user's.
  const global = path.join(tmp, 'gitconfig');
  await fs.writeFile(global, '[safe]\n\tdirectory = *\n');
  env.GIT_CONFIG_GLOBAL = global;
  if (source.private_key) {
    const key = path.join(tmp, 'key');
    await fs.writeFile(key, source.private_key.endsWith('\n') ? source.private_key : `${source.private_key}\n`, { mode: 0o600 });
    env.GIT_SSH_COMMAND = `ssh -i ${key} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no`;
  }
  return env;
}

/** The uri with username/password for http(s); they never appear in messages (see redact). */
function authUri(source: Source): string {
  if (!source.username || !/^https?:\/\//.test(source.uri)) return source.uri;
  const u = new URL(source.uri);
  u.username = encodeURIComponent(source.username);
  u.password = encodeURIComponent(source.password ?? '');
  return u.toString();
}

class Git {
  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly secret: string | undefined,
  ) {}

  async run(args: string[], cwd?: string): Promise<string> {
    try {
      const { stdout } = await exec('git', args, { cwd, env: this.env, maxBuffer: 64 * 1024 * 1024 });
      return stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new ResourceError(this.redact(`git ${args[0]} failed: ${(e.stderr || e.message).trim()}`));
    }
  }

  /** The password, as given and as it appears inside the uri. */
  redact(text: string): string {
    if (!this.secret) return text;
    return [this.secret, encodeURIComponent(this.secret)].reduce((t, s) => t.split(s).join('***'), text);
  }
}

async function withTmp<T>(fn: (tmp: string) => Promise<T>): Promise<T> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'git-resource-'));
  try {
    return await fn(tmp);
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

async function open(source: Source, tmp: string): Promise<Git> {
  return new Git(await gitEnv(source, tmp), source.password);
}

/** The pathspec of paths / ignore_paths, for log and rev-list. */
function pathspec(source: Source): string[] {
  const include = source.paths?.length ? source.paths : [];
  const exclude = (source.ignore_paths ?? []).map((p) => `:(exclude)${p}`);
  if (include.length === 0 && exclude.length === 0) return [];
  return ['--', ...(include.length ? include : ['.']), ...exclude];
}

async function check(source: Source, version: Version | null): Promise<Version[]> {
  return withTmp(async (tmp) => {
    const git = await open(source, tmp);
    const repo = path.join(tmp, 'repo');
    // Bare and without blobs' checkout: check reads history only.
    await git.run([
      'clone',
      '--bare',
      '--quiet',
      ...(source.branch ? ['--branch', source.branch, '--single-branch'] : []),
      authUri(source),
      repo,
    ]);
    if (source.tag_filter) return checkTags(git, repo, source, version);
    const head = source.branch ?? 'HEAD';
    const since = version?.ref;
    const known = since
      ? await git.run(['cat-file', '-e', `${since}^{commit}`], repo).then(
          () => true,
          () => false,
        )
      : false;
    if (!known) {
      // No version yet, or it vanished (force-push): the newest matching commit only, as git-resource does.
      const latest = (await git.run(['log', '-1', '--format=%H', head, ...pathspec(source)], repo)).trim();
      return latest ? [{ ref: latest }] : [];
    }
    const newer = (await git.run(['rev-list', '--reverse', `${since}..${head}`, ...pathspec(source)], repo)).split('\n').filter(Boolean);
    return [{ ref: since as string }, ...newer.map((ref) => ({ ref }))];
  });
}

/** With tag_filter, versions are the commits of matching tags, oldest tag first. */
async function checkTags(git: Git, repo: string, source: Source, version: Version | null): Promise<Version[]> {
  await git.run(['fetch', '--quiet', '--tags', authUri(source)], repo);
  const lines = (
    await git.run(
      ['for-each-ref', '--sort=creatordate', '--format=%(refname:short) %(*objectname)%(objectname)', `refs/tags/${source.tag_filter}`],
      repo,
    )
  )
    .split('\n')
    .filter(Boolean);
  // %(*objectname) is the commit of an annotated tag, empty for a lightweight one: take the first 40 hex.
  const versions = lines.map((l) => {
    const [tag, ids] = l.split(' ');
    return { ref: ids.slice(0, 40), tag };
  });
  if (!version) return versions.slice(-1);
  const at = versions.findIndex((v) => v.ref === version.ref);
  return at < 0 ? versions.slice(-1) : versions.slice(at);
}

async function metadataOf(git: Git, dir: string, ref: string): Promise<Metadata> {
  const sep = '\x1f';
  const out = await git.run(['log', '-1', `--format=%H${sep}%an <%ae>${sep}%aI${sep}%cn <%ce>${sep}%cI${sep}%B`, ref], dir);
  const [commit, author, authorDate, committer, committerDate, message] = out.split(sep);
  const tags = (await git.run(['tag', '--points-at', ref], dir)).split('\n').filter(Boolean).join(',');
  return [
    { name: 'commit', value: commit },
    { name: 'author', value: author },
    { name: 'author_date', value: authorDate },
    { name: 'committer', value: committer },
    { name: 'committer_date', value: committerDate },
    { name: 'message', value: message.trim() },
    ...(tags ? [{ name: 'tags', value: tags }] : []),
  ];
}

async function get(source: Source, version: Version, rawParams: unknown, dest: string): Promise<{ version: Version; metadata: Metadata }> {
  const params = GetParams.parse(rawParams ?? {});
  return withTmp(async (tmp) => {
    const git = await open(source, tmp);
    const depth = params.depth ? ['--depth', String(params.depth)] : [];
    await git.run(['clone', '--quiet', ...depth, ...(source.branch ? ['--branch', source.branch] : []), authUri(source), dest]);
    if (version.ref) {
      // A shallow clone may not reach an older commit: deepen until it does, as git-resource does.
      const has = () =>
        git.run(['cat-file', '-e', `${version.ref}^{commit}`], dest).then(
          () => true,
          () => false,
        );
      if (depth.length && !(await has())) await git.run(['fetch', '--quiet', '--unshallow', 'origin'], dest);
      await git.run(['checkout', '--quiet', '-B', source.branch ?? 'causeway-checkout', version.ref], dest);
    }
    if (params.submodules !== undefined && params.submodules !== 'none')
      await git.run(['submodule', 'update', '--init', '--recursive', ...depth], dest);
    // Forget the credentials in the clone's remote url.
    await git.run(['remote', 'set-url', 'origin', source.uri], dest);
    const ref = (await git.run(['rev-parse', 'HEAD'], dest)).trim();
    const metadata = await metadataOf(git, dest, ref);
    // Files git-resource writes for tasks: .git/ref, .git/short_ref, .git/commit_message, .git/committer.
    await fs.writeFile(path.join(dest, '.git', 'ref'), `${version.tag ?? ref}\n`);
    await fs.writeFile(path.join(dest, '.git', 'short_ref'), `${ref.slice(0, 7)}\n`);
    await fs.writeFile(path.join(dest, '.git', 'commit_message'), `${metadata.find((m) => m.name === 'message')?.value ?? ''}\n`);
    await fs.writeFile(path.join(dest, '.git', 'committer'), `${metadata.find((m) => m.name === 'committer')?.value ?? ''}\n`);
    return { version: { ref, ...(version.tag ? { tag: version.tag } : {}) }, metadata };
  });
}

async function put(source: Source, rawParams: unknown, dir: string): Promise<{ version: Version; metadata: Metadata }> {
  const parsed = PutParams.safeParse(rawParams ?? {});
  if (!parsed.success)
    throw new ResourceError(
      `invalid put params: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'params'}: ${i.message}`).join('; ')}`,
    );
  const params = parsed.data;
  const repo = path.resolve(dir, params.repository);
  const branch = params.branch ?? source.branch;
  if (!branch) throw new ResourceError('put needs a branch: set source.branch or params.branch');
  return withTmp(async (tmp) => {
    const git = await open(source, tmp);
    const uri = authUri(source);
    let tag: string | undefined;
    if (params.tag) {
      tag = `${params.tag_prefix ?? ''}${(await fs.readFile(path.resolve(dir, params.tag), 'utf8')).trim()}`;
      const annotation = params.annotate ? ['-a', '-F', path.resolve(dir, params.annotate)] : [];
      await git.run(['tag', '-f', ...annotation, tag, 'HEAD'], repo);
    }
    for (let attempt = 1; ; attempt++) {
      try {
        await git.run(['push', '--quiet', ...(params.force ? ['--force'] : []), uri, `HEAD:refs/heads/${branch}`], repo);
        break;
      } catch (err) {
        // Someone pushed first: with rebase, replay our commits on theirs and try again.
        if (!params.rebase || attempt >= PUSH_ATTEMPTS) throw err;
        process.stderr.write(`push rejected; rebasing on ${branch} (attempt ${attempt})\n`);
        await git.run(['fetch', '--quiet', uri, branch], repo);
        await git.run(['rebase', '--quiet', 'FETCH_HEAD'], repo);
        if (tag) await git.run(['tag', '-f', tag, 'HEAD'], repo);
      }
    }
    if (tag) await git.run(['push', '--quiet', '--force', uri, `refs/tags/${tag}`], repo);
    const ref = (await git.run(['rev-parse', 'HEAD'], repo)).trim();
    return { version: { ref }, metadata: await metadataOf(git, repo, ref) };
  });
}

if (require.main === module) main('git', SourceSchema, { check, in: get, out: put });
