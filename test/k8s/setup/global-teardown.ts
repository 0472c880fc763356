import fs from 'node:fs';
import { stopCluster } from '../cluster';

export default async function globalTeardown(): Promise<void> {
  const dir = globalThis.__causewayK8sDir;
  if (dir === undefined) return;
  await stopCluster(dir);
  // Keep the logs of a failed run for CI artifacts when asked to.
  if (!process.env.CAUSEWAY_KEEP_K8S) fs.rmSync(dir, { recursive: true, force: true });
  globalThis.__causewayK8sDir = undefined;
}
