import { startupSnapshot } from 'node:v8';
import type { CommandTable } from './program';

// The entry of client commands. `npm run build` bundles this file and what it loads into
// dist/cli/client.bundle.js (scripts/bundle-cli.mjs), which bin/causeway runs with V8's code
// cache: one file compiled from a cache instead of ~500 modules resolved, read and compiled
// (BENCHMARKS.md, "One-step build latency"); and from that bundle a V8 startup snapshot, which
// bin/causeway starts Node from when it can (cli/snapshot.ts). Any other command line (worker,
// dev, help, a typo) goes to cli/main, which loads its modules from dist/ as they are.

/** Runs the command line of this process. */
export function main(): void {
  // Required here, not imported: commander loads child_process, which Node does not vouch for in a snapshot.
  const { CLIENT_COMMANDS } = require('./client-commands') as typeof import('./client-commands');
  const { commandName, runCli } = require('./program') as typeof import('./program');
  const name = commandName(process.argv.slice(2));
  const table: CommandTable = Object.values(CLIENT_COMMANDS);
  if (name !== undefined && table.some(([names]) => names.includes(name))) runCli(table);
  else require('./main');
}

/**
 * Loads every client command's implementation: bin/causeway does before it writes the code
 * cache, so that the cache holds their modules whichever command wrote it.
 */
export function loadAll(): void {
  require('./commands/run');
  require('./commands/execute');
  require('./commands/compile');
  require('./commands/watch');
  require('./commands/abort');
  require('./commands/builds');
  require('./commands/retry');
  require('./commands/pipelines');
}

export { fromSnapshot, warmSnapshot } from './snapshot';

// Writing the snapshot runs nothing: the snapshot's own main runs `main` in each process started from it.
if (!startupSnapshot.isBuildingSnapshot()) main();
