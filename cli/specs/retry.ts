import type { Command } from 'commander';
import { lazy } from './lazy';

const impl = () => require('../commands/retry') as typeof import('../commands/retry');

export function registerRetry(program: Command): void {
  program
    .command('retry')
    .description('rerun a failed, errored or aborted build from the first step that did not succeed')
    .argument('<build>', 'build id')
    .option('--from <step-id>', 'rerun from this step instead (ids as `causeway status` shows them, e.g. plan.2)')
    .option('-d, --detach', 'start the retry and return without following it')
    .addHelpText(
      'after',
      `
The build's history is reset to just before that step was scheduled (a Temporal reset):
steps before it keep their results and artifacts and do not run again; the new run is
linked to the old one (search attribute CausewayRetryOf) and both stay visible in the
Temporal UI. Exit status as \`causeway run\`.

Examples:
  causeway retry build-3f2c…
  causeway retry build-3f2c… --from plan.1.in_parallel.0`,
    )
    .action(lazy(() => impl().retry));
}
