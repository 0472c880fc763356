import type { Command } from 'commander';
import { collect, lazy, oneTeam, teamHelp } from './lazy';

const impl = () => require('../commands/execute') as typeof import('../commands/execute');

export function registerExecute(program: Command): void {
  program
    .command('execute')
    .description('run one task file with local directories as inputs, as `fly execute` does')
    .argument('[args...]', "after --: appended to the task's run.args, as `fly execute -- ARGS`")
    .requiredOption('-c, --config <task.yml>', 'the task config file')
    .option('-i, --input <name=dir>', 'upload a directory as input NAME; repeatable (default: . for a single-input task)', collect, [])
    .option('-o, --output <name=dir>', 'download output NAME into a directory; repeatable', collect, [])
    .option('-v, --var <name=value>', 'set a ((var)) in the task file; repeatable', collect, [])
    .option('-y, --yaml-var <name=value>', 'set a ((var)) to a YAML value (-y n=1, -y v={ref: abc}); repeatable', collect, [])
    .option('-l, --load-vars-from <file>', 'load ((vars)) from a YAML file; repeatable', collect, [])
    .option(
      '--creds-from-worker',
      "leave ((vars)) that -v/-l do not give to the worker's credential manager (default when CAUSEWAY_CREDS or CAUSEWAY_CREDS_FILE is set)",
    )
    .option(
      '-j, --inputs-from <pipeline/job>',
      "take the inputs not given with -i from the job's gets, at the versions its next build would get",
    )
    .option('-m, --input-mapping <task-input=job-input>', 'with -j: the job input a task input takes; repeatable', collect, [])
    .option(
      '--image <input>',
      "with -j: the job's input (a get of it, e.g. of a registry-image resource) to use as the task's image, at the version its next build would get; replaces the task file's image_resource",
    )
    .option('-p, --privileged', 'run the task privileged (on runtimes with containers)')
    .option('--tag <tag>', "run on a worker with this tag (the step's tags:); repeatable", collect, [])
    .option('--include-ignored', "upload a git work tree's ignored files too (everything in the directory)")
    .option('-b, --background', 'start the build and exit: print its id, follow no log, fetch no output (refused with -o)')
    .option('--team <name>', teamHelp('the one-off build'), oneTeam)
    .addHelpText(
      'after',
      `
Inputs in a git work tree upload its tracked and unignored files (--include-ignored: all);
other directories upload everything. Params the task file leaves empty (\`KEY:\` or \`KEY: ""\`) take the
value of the caller's environment variable KEY, as fly execute does. Ctrl-C or SIGTERM
aborts the build. Exit status: 0 succeeded, 1 failed, 2 errored, 3 aborted.

Examples:
  causeway execute -c ci/unit.yml
  causeway execute -c ci/build.yml -i repo=. -o dist=./out
  causeway execute -c ci/test.yml -- -run TestLogin
  causeway execute -c ci/test.yml -j booklit/unit -m source=repo
  causeway execute -c ci/test.yml -j booklit/unit --image golang-image`,
    )
    .action(lazy(() => impl().execute));
}
