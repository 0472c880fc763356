import type { Command } from 'commander';
import { collect, lazy } from './lazy';

const impl = () => require('../commands/compile') as typeof import('../commands/compile');

export function registerCompile(program: Command): void {
  program
    .command('compile')
    .description('print the exact input of workflow `build` for a plan (JSON), for any Temporal client')
    .argument('[plan]', 'plan file: a Concourse job (name + plan:) or, with --job, a pipeline')
    .option('-j, --job <name>', 'the job to compile when the file is a Concourse pipeline (not needed when it has one job)')
    .option('-v, --var <name=value>', 'set a ((var)); repeatable', collect, [])
    .option('-y, --yaml-var <name=value>', 'set a ((var)) to a YAML value (-y n=1, -y v={ref: abc}); repeatable', collect, [])
    .option('-l, --load-vars-from <file>', 'load ((vars)) from a YAML file; repeatable', collect, [])
    .option(
      '--creds-from-worker',
      "leave ((vars)) that -v/-l do not give to the worker's credential manager (default when CAUSEWAY_CREDS or CAUSEWAY_CREDS_FILE is set)",
    )
    .option('-i, --input <name>', 'an artifact the client uploads before starting the build (as run -i NAME=DIR); repeatable', collect, [])
    .option('-o, --output <name>', 'an artifact exported when the build ends (as run -o NAME=DIR); repeatable', collect, [])
    .option('--schema <which>', 'print the JSON Schema of the workflow input (`input`) or of its result (`result`) instead')
    .addHelpText(
      'after',
      `
The plan is validated and its static ((vars)) interpolated, as \`causeway run\` does; nothing
is started. docs/client.md describes the contract.

Examples:
  causeway compile examples/hello.yml > input.json
  temporal workflow start --type build --task-queue causeway --input-file input.json
  causeway compile --schema input`,
    )
    .action(lazy(() => impl().compile));
}
