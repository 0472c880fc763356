import type { Command } from 'commander';
import { EXIT_STILL_RUNNING } from '../exit-codes';
import { lazy, oneTeam, teamHelp } from './lazy';

const impl = () => require('../commands/watch') as typeof import('../commands/watch');

export function registerWatch(program: Command): void {
  program
    .command('watch')
    .description("show a build's log from its start, then follow it until it ends")
    .argument('[build]', 'build id (build-…), as `causeway run` and `causeway builds` print it')
    .option('-j, --job <pipeline/job>', "instead of an id: the job's newest build (running or pending, else the last), as fly watch -j")
    .option('-b, --build <number>', 'with -j: the build of that number')
    .option('--team <name>', teamHelp('the build'), oneTeam)
    .option('--no-follow', 'print what the build logged so far and return')
    .option('--services', "interleave each service's output with the steps', prefixed [svc NAME] (the default)")
    .option('--no-services', "leave the services' output out (the last lines of each still show when the build fails)")
    .option('-t, --timestamps', 'start each line with the local time its output reached the log (HH:MM:SS), as fly watch -t')
    .addHelpText(
      'after',
      `
Works during and after a build; exits with the build status (0 succeeded, 1 failed,
2 errored, 3 aborted). With --no-follow on a build still running: exits ${EXIT_STILL_RUNNING}.

Examples:
  causeway watch build-3f2c…
  causeway watch -j booklit/unit
  causeway watch -j booklit/unit -b 3`,
    )
    .action(lazy(() => impl().watch));
}
