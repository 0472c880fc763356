import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Copies an artifact into a step's working directory. Copy-on-write where the
 * filesystem supports reflinks (cp --reflink=auto falls back to a plain copy), so
 * a task may change its inputs without changing the producer's output.
 */
export async function copyArtifact(from: string, to: string): Promise<void> {
  await fs.mkdir(to, { recursive: true });
  await run('cp', ['-a', '--reflink=auto', `${from}/.`, to]);
}

export function safeJoin(root: string, relative: string): string {
  const joined = path.resolve(root, relative);
  if (joined !== root && !joined.startsWith(`${root}${path.sep}`)) {
    throw new Error(`path ${relative} leaves its directory`);
  }
  return joined;
}
