import type { Command } from 'commander';
import { lazy } from './lazy';

const impl = () => require('../commands/reconcile') as typeof import('../commands/reconcile');

export function registerReconcile(program: Command): void {
  program
    .command('reconcile')
    .description('stop what closed builds left running on this host and delete artifacts past their retention')
    .option(
      '--retention <duration>',
      "keep closed builds' artifacts this long for `causeway retry` (Go duration; default: CAUSEWAY_ARTIFACT_RETENTION)",
    )
    .option('--dry-run', 'only report what would be stopped or removed')
    .option(
      '--containerd-socket <path>',
      "also remove closed builds' containers from this containerd (default: the dev stack's, when it runs)",
    )
    .addHelpText(
      'after',
      `
Workers do this every CAUSEWAY_RECONCILE_INTERVAL (default 1m); run it by hand after
\`temporal workflow terminate\`, which ends a build without running its teardown.

Examples:
  causeway reconcile --dry-run
  causeway reconcile --retention 2h`,
    )
    .action(lazy(() => impl().reconcile));
}
