// Starts one throwaway Temporal dev server + NATS for the whole integration run. Tests
// start their own in-process workers, so no worker process is started here.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startStackOnFreePorts } from '../../cli/dev/stack';

declare global {
  // Read by global-teardown.ts, which runs in the same process as this file.
  var __causewayTestStackHome: string | undefined;
}

export default async function globalSetup(): Promise<void> {
  // Another project's globalSetup (test/containerd) may have started it already in this process:
  // jest runs every selected project's setup before the tests, and one stack serves them all.
  if (globalThis.__causewayTestStackHome !== undefined) return;
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-test-'));
  const started = Date.now();
  // Ports from the OS, so a developer's own `causeway dev up` and parallel runs do not clash.
  const stack = await startStackOnFreePorts({
    home,
    persistent: false,
    startWorker: false,
    log: (line) => process.stderr.write(`[test stack] ${line}\n`),
  });
  globalThis.__causewayTestStackHome = home;
  process.env.TEMPORAL_ADDRESS = stack.temporal.address;
  process.env.NATS_URL = stack.nats.url;
  process.env.CAUSEWAY_HOME = home;
  process.stderr.write(
    `[test stack] Temporal ${stack.temporal.address}, NATS ${stack.nats.url}, logs ${stack.logDir} (ready in ${Date.now() - started} ms)\n`,
  );
}
