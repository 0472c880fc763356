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
    .option('--team <name>', teamHelp('the build'), oneTeam)
    .addHelpText('after', '\nExamples:\n  causeway abort build-3f2c…\n  causeway abort -j booklit/unit -b 3')
    .action(lazy(() => impl().abort));
}
