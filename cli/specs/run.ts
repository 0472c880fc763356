import type { Command } from 'commander';
import { collect, lazy } from './lazy';

const impl = () => require('../commands/run') as typeof import('../commands/run');

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('validate a plan, run it as a build, stream its logs, and exit with its status')
    .argument('<plan>', 'plan file: a Concourse job (name + plan:) or, with --job, a pipeline')
    .option('-j, --job <name>', 'the job to run when the file is a Concourse pipeline (not needed when it has one job)')
    .option('-v, --var <name=value>', 'set a ((var)); repeatable', collect, [])
    .option('-y, --yaml-var <name=value>', 'set a ((var)) to a YAML value (-y n=1, -y v={ref: abc}); repeatable', collect, [])
    .option('-l, --load-vars-from <file>', 'load ((vars)) from a YAML file; repeatable', collect, [])
    .option(
      '--creds-from-worker',
      "leave ((vars)) that -v/-l do not give to the worker's credential manager (default when CAUSEWAY_CREDS or CAUSEWAY_CREDS_FILE is set)",
    )
    .option('-i, --input <name=dir>', 'upload a directory as the artifact NAME; repeatable', collect, [])
    .option('-o, --output <name=dir>', 'download the artifact NAME into a directory when the build ends; repeatable', collect, [])
    .option('-d, --detach', 'print the build id (alone, on stdout) and return without following it')
    .option('--json', 'with --detach: print {"buildId", "plan", "url"} as JSON')
    .option('--services', "interleave each service's output with the steps', prefixed [svc NAME] (the default)")
    .option('--no-services', "leave the services' output out (the last lines of each still show when the build fails)")
    .addHelpText(
      'after',
      `
Exit status: 0 succeeded, 1 failed, 2 errored, 3 aborted.
With no stack configured (TEMPORAL_ADDRESS / NATS_URL) and none running, the embedded
dev stack is started first. Ctrl-C or SIGTERM aborts the build; twice leaves it running.

Examples:
  causeway run examples/hello.yml
  causeway run ci.yml -v version=1.2.3 -l secrets.yml -i repo=. -o dist=./dist
  causeway run pipeline.yml --job unit`,
    )
    .action(lazy(() => impl().run));
}
