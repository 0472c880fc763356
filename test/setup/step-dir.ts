import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * A new directory that steps may write in. On a root worker steps run under their build's own
 * uid (docs/security.md), so a test's directory must be open like /tmp (sticky, 1777), or the
 * step cannot leave its markers there.
 */
export function stepWritableDir(prefix: string, parent = os.tmpdir()): string {
  const dir = fs.mkdtempSync(path.join(parent, prefix));
  fs.chmodSync(dir, 0o1777);
  return dir;
}
