import fs from 'node:fs';
import { stopStack } from '../../cli/dev/stack';

export default async function globalTeardown(): Promise<void> {
  const home = globalThis.__causewayTestStackHome;
  if (home === undefined) return;
  await stopStack(home);
  fs.rmSync(home, { recursive: true, force: true });
  globalThis.__causewayTestStackHome = undefined;
}
