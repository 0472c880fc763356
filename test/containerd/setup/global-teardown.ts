import fs from 'node:fs';
import integrationTeardown from '../../setup/global-teardown';
import { stopContainerd } from '../../../cli/dev/containerd';

export default async function globalTeardown(): Promise<void> {
  const dir = process.env.CAUSEWAY_TEST_CONTAINERD;
  if (dir) {
    await stopContainerd(dir);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  // Stops the stack unless the integration project's teardown already did.
  await integrationTeardown();
}
