import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { promisify } from 'node:util';
import { safeJoin } from './safe-path';

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

export { safeJoin };
