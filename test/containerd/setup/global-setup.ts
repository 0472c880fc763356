// The containerd project: the integration stack (Temporal, NATS; shared with the integration
// project when both run) plus a containerd of the run's own, a local registry and the busybox
// test image in it (cli/dev/containerd.ts). containerd's directory is its own, outside the
// stack's home, so the two can be torn down in either order.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import integrationSetup from '../../setup/global-setup';
import { repoRoot } from '../../../cli/dev/stack';
import { startContainerd } from '../../../cli/dev/containerd';

export default async function globalSetup(): Promise<void> {
  await integrationSetup();
  const started = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-containerd-'));
  process.env.CAUSEWAY_TEST_CONTAINERD = dir;
  const state = await startContainerd(dir, repoRoot(), (line) => process.stderr.write(`[containerd] ${line}\n`));
  process.stderr.write(`[containerd] ready in ${Date.now() - started} ms (registry ${state.registry})\n`);
}
