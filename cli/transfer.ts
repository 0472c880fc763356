import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { NatsConnection } from '@nats-io/transport-node';
import { getDirectory, putDirectory, transferBucket, transferKeys } from '../common/transfer';
import { say } from './output';

const run = promisify(execFile);

/** The files fly execute would upload: in a git work tree, tracked and untracked-but-not-ignored files; else everything. */
async function filesToUpload(dir: string): Promise<string[] | undefined> {
  try {
    const { stdout } = await run('git', ['-C', dir, 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
      maxBuffer: 256 * 1024 * 1024,
    });
    return stdout.split('\0').filter((f) => f && fs.existsSync(path.join(dir, f)));
  } catch {
    return undefined;
  }
}

/** With `includeIgnored` (fly's --include-ignored), every file of each directory, git work tree or not. */
export async function uploadInputs(
  nc: NatsConnection,
  buildId: string,
  inputs: Record<string, string>,
  opts: { includeIgnored: boolean },
): Promise<void> {
  const entries = Object.entries(inputs);
  if (entries.length === 0) return;
  const store = await transferBucket(nc);
  for (const [name, dir] of entries) {
    const files = opts.includeIgnored ? undefined : await filesToUpload(dir);
    const started = Date.now();
    process.stderr.write(`uploading ${name} from ${dir}${files ? ` (${files.length} git-tracked or unignored files)` : ''}... `);
    await putDirectory(store, transferKeys.input(buildId, name), dir, files);
    say(`done in ${Date.now() - started}ms`);
  }
}

export async function downloadOutputs(nc: NatsConnection, buildId: string, outputs: Record<string, string>): Promise<void> {
  const entries = Object.entries(outputs);
  if (entries.length === 0) return;
  const store = await transferBucket(nc);
  for (const [name, dir] of entries) {
    const ok = await getDirectory(store, transferKeys.output(buildId, name), dir);
    say(
      ok
        ? `downloaded output ${name} to ${dir}`
        : `output ${name} was not produced by this build (no step has an output or artifact named ${name})`,
    );
  }
}
