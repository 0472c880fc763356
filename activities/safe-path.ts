// Paths the engine builds from a plan's names and paths, kept inside the directory they belong to.
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';

/** A path built from the plan that would leave its directory: the plan, not the machine, is wrong. */
export class PathEscapeError extends Error {
  override readonly name = 'PathEscapeError';
}

/** `relative` resolved under `root`; refused when it leaves `root` (`..`, an absolute path). */
export function safeJoin(root: string, relative: string): string {
  const joined = path.resolve(root, relative);
  if (joined !== root && !joined.startsWith(`${root}${path.sep}`)) {
    throw new PathEscapeError(`path ${relative} leaves its directory`);
  }
  return joined;
}

/**
 * The bytes of `relative` under `root`, refused when it leaves `root` also through a symbolic
 * link: artifacts are written by steps, and the worker reading them may be root. Only a regular
 * file: a FIFO a step made would block the read forever, a device never end.
 */
export async function openFileInside(root: string, relative: string): Promise<Readable> {
  const joined = safeJoin(root, relative);
  // A missing file fails in open below, with the error a plain read gives.
  const [realRoot, real] = await Promise.all([fs.realpath(root), fs.realpath(joined).catch(() => joined)]);
  if (real !== realRoot && !real.startsWith(`${realRoot}${path.sep}`)) {
    throw new PathEscapeError(`path ${relative} leaves its directory through a symbolic link`);
  }
  // O_NONBLOCK: opening a FIFO without a writer would wait for one.
  const handle = await fs.open(real, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    if (!(await handle.stat()).isFile()) throw new Error(`${relative} is not a regular file`);
  } catch (err) {
    await handle.close();
    throw err;
  }
  return handle.createReadStream();
}

/** `value` as one directory name: refused when it could name another directory (`..`, `a/b`, empty). */
export function segment(value: string, what: string): string {
  if (value === '' || value === '.' || value === '..' || value.includes('/') || value.includes('\0')) {
    throw new PathEscapeError(`${what} \`${value}\` cannot be a directory name: it would leave its directory`);
  }
  return value;
}
