import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export default async function globalTeardown(): Promise<void> {
  const home = globalThis.__causewayDevHome;
  if (home === undefined) return;
  execFileSync(path.resolve(__dirname, '../../../../bin/causeway'), ['dev', 'down'], {
    env: { ...process.env, CAUSEWAY_HOME: home },
    stdio: ['ignore', process.stderr, process.stderr],
  });
  // Keep the logs of a failed run for CI artifacts when asked to.
  if (!process.env.CAUSEWAY_KEEP_K8S) fs.rmSync(home, { recursive: true, force: true });
  globalThis.__causewayDevHome = undefined;
}
