import os from 'node:os';

/** Overlayfs took the `volatile` option (no sync of the file system under the upper layer) in Linux 5.10. */
export function overlayTakesVolatile(release = os.release()): boolean {
  const [major = 0, minor = 0] = release.split('.').map((n) => Number.parseInt(n, 10));
  return major > 5 || (major === 5 && minor >= 10);
}
