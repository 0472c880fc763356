// The containerd project: the integration stack (Temporal, NATS) plus a containerd of the run's
// own, a local registry and the busybox test image in it (cli/dev/containerd.ts).
import path from 'node:path';
import integrationSetup from '../../setup/global-setup';
import { repoRoot } from '../../../cli/dev/stack';
import { startContainerd } from '../../../cli/dev/containerd';

export default async function globalSetup(): Promise<void> {
  await integrationSetup();
  const started = Date.now();
  const dir = path.join(process.env.CAUSEWAY_HOME!, 'containerd');
  const state = await startContainerd(dir, repoRoot(), (line) => process.stderr.write(`[containerd] ${line}\n`));
  process.env.CAUSEWAY_TEST_CONTAINERD = dir;
  process.stderr.write(`[containerd] ready in ${Date.now() - started} ms (registry ${state.registry})\n`);
}
