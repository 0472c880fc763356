import type { Command } from 'commander';
import { lazy } from './lazy';

const impl = () => require('../commands/abort') as typeof import('../commands/abort');

export function registerAbort(program: Command): void {
  program
    .command('abort')
    .description('abort a running build: its steps get SIGTERM, then SIGKILL; on_abort and ensure hooks run')
    .argument('<build>', 'build id')
    .addHelpText('after', '\nExample:\n  causeway abort build-3f2c…')
    .action(lazy(() => impl().abort));
}
