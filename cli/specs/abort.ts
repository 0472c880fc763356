import type { Command } from 'commander';
import { lazy, oneTeam, teamHelp } from './lazy';

const impl = () => require('../commands/abort') as typeof import('../commands/abort');

export function registerAbort(program: Command): void {
  program
    .command('abort')
    .alias('abort-build')
    .description('abort a running build: its steps get SIGTERM, then SIGKILL; on_abort and ensure hooks run')
    .argument('[build]', 'build id')
    .option('-j, --job <pipeline/job>', "instead of an id: the job's newest build, as fly abort-build -j")
    .option('-b, --build <number>', 'with -j: the build of that number')
    .option(
      '--force',
      'WARNING: only as a last resort, after a plain abort has had a minute: ends the build at once (terminates its workflow) without running its on_abort and ensure hooks or waiting for its steps to stop',
    )
    .option('--team <name>', teamHelp('the build'), oneTeam)
    .addHelpText(
      'after',
      `
--force is fly's abort-build --force: for a build whose abort does not end it (its worker is
gone, a hook hangs). Its workflow is terminated, so the build shows as errored ("terminated:
aborted with --force"), not aborted; its steps' processes, containers or pods are stopped by
the next reconcile of a worker (CAUSEWAY_RECONCILE_INTERVAL, default 1m; \`causeway reconcile\`).

Examples:
  causeway abort build-3f2c…
  causeway abort -j booklit/unit -b 3
  causeway abort -j booklit/unit -b 3 --force`,
    )
    .action(lazy(() => impl().abort));
}
