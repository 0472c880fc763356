import type { Command } from 'commander';
import { lazy } from './lazy';

const impl = () => require('../commands/replay') as typeof import('../commands/replay');

export function registerReplay(program: Command): void {
  program
    .command('replay')
    .description("replay a build's history against the current workflow code to check it is still deterministic")
    .argument('[build]', 'build id to fetch the history of')
    .option('--history <file>', 'a history JSON file instead (from the Temporal UI "Download" or `temporal workflow show -o json`)')
    .addHelpText(
      'after',
      `
A change to workflows/ that would break builds already running fails here, naming the
event where the new code disagrees with the recorded history. Exit 0 when deterministic,
1 when not.

Examples:
  causeway replay build-3f2c…
  causeway replay --history test/fixtures/histories/ci.json`,
    )
    .action(lazy(() => impl().replay));
}
