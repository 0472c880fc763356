// Paths the engine builds from a plan's names and paths, kept inside the directory they belong to.
import path from 'node:path';

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

/** `value` as one directory name: refused when it could name another directory (`..`, `a/b`, empty). */
export function segment(value: string, what: string): string {
  if (value === '' || value === '.' || value === '..' || value.includes('/') || value.includes('\0')) {
    throw new PathEscapeError(`${what} \`${value}\` cannot be a directory name: it would leave its directory`);
  }
  return value;
}
