import { Option, type Command } from 'commander';
import { CliError } from '../output';
import { collect, lazy, oneTeam, positiveCount, teamHelp } from './lazy';

const impl = () => require('../commands/pipelines') as typeof import('../commands/pipelines');

export function registerPipelines(program: Command): void {
  program
    .command('set-pipeline')
    .alias('sp')
    .description('create or update a pipeline from a pipeline file: shows the diff against the running one and asks first')
    .requiredOption('-p, --pipeline <name>', 'the pipeline to create or update')
    .requiredOption(
      '-c, --config <file>',
      'the pipeline file (resources:, resource_types:, jobs:); - reads it from stdin (and does not ask)',
    )
    .option('-v, --var <name=value>', 'set a ((var)); repeatable', collect, [])
    .option('-y, --yaml-var <name=value>', 'set a ((var)) to a YAML value (-y n=1, -y v={ref: abc}); repeatable', collect, [])
    .option('-l, --load-vars-from <file>', 'load ((vars)) from a YAML file; repeatable', collect, [])
    .option(
      '-i, --instance-var <name=value>',
      'set an instance var (a YAML value, also a ((var)) of the file): the pipeline becomes the instance NAME/name:value; repeatable',
      collect,
      [],
    )
    .option('-n, --non-interactive', 'apply without asking')
    .option('-d, --dry-run', 'show the diff against the running pipeline and apply nothing')
    .option('--no-color', 'print the diff without colors (also NO_COLOR)')
    .option(
      '--check-creds',
      "look up every credential ref first in the workers' credential manager, as this shell names it (CAUSEWAY_CREDS_FILE or CAUSEWAY_CREDS); refused without one",
    )
    .option('--team <name>', teamHelp('the pipeline'), oneTeam)
    .addHelpText(
      'after',
      `
Every job is compiled as \`causeway run --job\` would, and every problem is printed with its
file:line before anything changes. A new pipeline starts paused, as fly's: unpause it with
\`causeway unpause-pipeline -p NAME\`; then it checks its resources right away, and again every
check_every (default 1m; \`never\`: only on check-resource).

With -i the pipeline is an instance (Concourse's instanced pipelines): one config set once per
branch, say, each instance its own pipeline with its own versions and builds. Other commands
name it as fly does: -p pr/branch:feature-x, -j pr/branch:feature-x/unit.

Example:
  causeway set-pipeline -p ci -c examples/pipeline.yml -v uri=file://$PWD -v branch=main
  causeway set-pipeline -p pr -c examples/pipeline.yml -v uri=file://$PWD -i branch=feature-x`,
    )
    .action(lazy(() => impl().setPipeline));

  program
    .command('validate-pipeline')
    .alias('vp')
    .description('check a pipeline file without setting it (offline): every problem with its file:line')
    .requiredOption('-c, --config <file>', 'the pipeline file')
    .option('-v, --var <name=value>', 'set a ((var)); repeatable', collect, [])
    .option('-y, --yaml-var <name=value>', 'set a ((var)) to a YAML value (-y n=1, -y v={ref: abc}); repeatable', collect, [])
    .option('-l, --load-vars-from <file>', 'load ((vars)) from a YAML file; repeatable', collect, [])
    .option('-o, --output', 'print the pipeline with the given ((vars)) filled in instead of "looks good"')
    .option('-s, --strict', "fail on Concourse's warnings too (names that are not its identifiers, deprecated fields)")
    .addOption(new Option('--enable-across-step', "fly's, deprecated: across is always enabled").hideHelp())
    .addHelpText(
      'after',
      `
Exit status 0 when the file is valid, 2 with every problem listed otherwise (and, with
--strict, every warning: Concourse sets such a file and warns). ((vars)) that
-v/-l do not give are left for the worker's credential manager, as set-pipeline leaves them.

Example:
  causeway validate-pipeline -c examples/pipeline.yml -v uri=file://$PWD -v branch=main`,
    )
    .action(lazy(() => impl().validatePipeline));

  program
    .command('pipelines')
    .alias('ps')
    .description('list the pipelines that are set, paused or not')
    .option(
      '--include-archived',
      'also list the archived pipelines not set again since (paused, no jobs or resources), with an archived column',
    )
    .option('--json', 'print a JSON array: name, instance_vars (of an instance), ref (NAME/k:v,...), paused, archived, jobs, resources')
    .option('--team <name>', teamHelp('the pipelines'), oneTeam)
    .action(lazy(() => impl().listPipelines));

  program
    .command('get-pipeline')
    .alias('gp')
    .description("print a pipeline's configuration: the file as it was set")
    .requiredOption('-p, --pipeline <name>', 'the pipeline: NAME, or NAME/k:v,... for an instance')
    .option('-j, --json', 'print it as JSON')
    .option('--team <name>', teamHelp('the pipeline'), oneTeam)
    .addHelpText(
      'after',
      `
Its ((vars)) are printed as the file has them: set-pipeline's -v/-y/-l values are not kept
(fly prints them filled in), so the output can be shared and set again with the same flags.

Example:
  causeway get-pipeline -p booklit > booklit.yml`,
    )
    .action(lazy(() => impl().getPipeline));

  program
    .command('destroy-pipeline')
    .alias('dp')
    .description('stop a pipeline: no more checks and no new builds (builds already running finish)')
    .requiredOption('-p, --pipeline <name>', 'the pipeline: NAME, or NAME/k:v,... for an instance')
    .option('-n, --non-interactive', 'destroy without asking')
    .option('--team <name>', teamHelp('the pipeline'), oneTeam)
    .action(lazy(() => impl().destroyPipeline));

  program
    .command('archive-pipeline')
    .alias('ap')
    .description(
      "archive a pipeline (fly's archive-pipeline): it stops for good, as destroy-pipeline; the pipelines its set_pipeline steps set archive themselves",
    )
    .option('-p, --pipeline <name>', 'the pipeline: NAME, or NAME/k:v,... for an instance')
    .option('-a, --all', 'every pipeline that is set')
    .option('-n, --non-interactive', 'archive without asking')
    .option('--team <name>', teamHelp('the pipeline'), oneTeam)
    .addHelpText(
      'after',
      `
Its builds stay (\`builds -p\` lists them) and \`pipelines --include-archived\` lists it; set-pipeline
sets it again, numbering builds on, paused (as Concourse's: an archived pipeline is paused).`,
    )
    .action(lazy(() => impl().archivePipeline));

  program
    .command('rename-pipeline')
    .alias('rp')
    .description("rename a pipeline: it keeps its versions, builds, pins and pauses (fly's rename-pipeline)")
    .requiredOption('-o, --old-name <name>', 'the pipeline to rename')
    .requiredOption('-n, --new-name <name>', 'its new name')
    .option('--team <name>', teamHelp('the pipeline'), oneTeam)
    .addHelpText(
      'after',
      `
Its builds from before keep their ids (build-OLD:JOB:N); \`builds -p NEW\` lists them too.

Example:
  causeway rename-pipeline -o booklit -n booklit-v2`,
    )
    .action(lazy(() => impl().renamePipeline));

  for (const [command, paused] of [
    ['pause-pipeline', true],
    ['unpause-pipeline', false],
  ] as const) {
    program
      .command(command)
      .alias(paused ? 'pp' : 'up')
      .description(paused ? 'pause a pipeline: no checks and no new builds until unpaused' : 'unpause a pipeline')
      .option('-p, --pipeline <name>', 'the pipeline: NAME, or NAME/k:v,... for an instance')
      .option('-a, --all', `${paused ? 'pause' : 'unpause'} every pipeline that is set`)
      .option('--team <name>', teamHelp('the pipelines'), oneTeam)
      .action(lazy(() => (opts: { pipeline?: string; all?: boolean }) => impl().pausePipeline(opts, paused)));
  }

  for (const [command, paused] of [
    ['pause-job', true],
    ['unpause-job', false],
  ] as const) {
    program
      .command(command)
      .alias(paused ? 'pj' : 'uj')
      .description(paused ? 'pause a job: its pending builds wait and no new ones start' : 'unpause a job')
      .requiredOption('-j, --job <pipeline/job>', 'the job: PIPELINE/JOB, or PIPELINE/k:v,.../JOB for an instance')
      .option('--team <name>', teamHelp('the job'), oneTeam)
      .action(lazy(() => (opts: { job: string }) => impl().pauseJob(opts, paused)));
  }

  program
    .command('jobs')
    .alias('js')
    .description("list a pipeline's jobs: paused, last build and its status, what the next build would get")
    .requiredOption('-p, --pipeline <name>', 'the pipeline: NAME, or NAME/k:v,... for an instance')
    .option('--json', 'print a JSON array: name, paused, builds (number, status)')
    .option('--team <name>', teamHelp('the pipeline'), oneTeam)
    .action(lazy(() => impl().jobs));

  program
    .command('trigger-job')
    .alias('tj')
    .description('start a new build of a job with the newest versions its inputs allow (a manual trigger)')
    .requiredOption('-j, --job <pipeline/job>', 'the job: PIPELINE/JOB, or PIPELINE/k:v,.../JOB for an instance')
    .option('-w, --watch', "follow the build's log until it ends, and exit with its status")
    .option('--team <name>', teamHelp('the job'), oneTeam)
    .action(lazy(() => impl().triggerJob));

  program
    .command('schedule-job')
    .alias('sj')
    .description("ask the pipeline to run its scheduling now (fly's recovery command): pending builds start if they may")
    .requiredOption('-j, --job <pipeline/job>', 'the job: PIPELINE/JOB, or PIPELINE/k:v,.../JOB for an instance')
    .addHelpText(
      'after',
      `
Concourse's scheduler runs a job when something asks for it (a new version, a build's end,
a pin, ...), and schedule-job asks for it by hand. Causeway's pipeline schedules all its jobs on
each such change and after every check, so this is needed only to recover; it changes nothing
when nothing is stuck.

Example:
  causeway schedule-job -j booklit/unit`,
    )
    .action(lazy(() => impl().scheduleJob));

  program
    .command('rerun-build')
    .alias('rb')
    .description('start a new build of a job with the same input versions as one of its builds')
    .requiredOption('-j, --job <pipeline/job>', 'the job: PIPELINE/JOB, or PIPELINE/k:v,.../JOB for an instance')
    .requiredOption('-b, --build <number>', 'the number of the build to rerun', (value: string) => {
      const n = Number(value);
      if (Number.isInteger(n) && n >= 1) return n;
      throw new CliError(
        `-b takes a build number (1, 2, ...), got ${value}`,
        'a rerun here is numbered as any build, the next number (not N.1): see the numbers with causeway jobs -p PIPELINE --json',
      );
    })
    .option('-w, --watch', "follow the build's log until it ends, and exit with its status")
    .addHelpText(
      'after',
      `
As Concourse's: the rerun gets the versions build -b got, whatever is newer, disabled or
pinned since; it waits for its job's pause, max_in_flight and serial groups as any build, and
goes before the job's pending builds newer than -b. A rerun of a rerun reruns the first build.
Concourse names a rerun of #4 4.1; here it takes the job's next number (jobs --json: rerun_of).

Example:
  causeway rerun-build -j booklit/unit -b 4 -w`,
    )
    .action(lazy(() => impl().rerunBuild));

  program
    .command('check-resource')
    .alias('cr')
    .description("run a resource's check now and record the versions it finds; waits for it")
    .requiredOption('-r, --resource <pipeline/resource>', 'the resource: PIPELINE/RESOURCE, or PIPELINE/k:v,.../RESOURCE for an instance')
    .option('-f, --from <key:value>', 'check from this version instead of the newest known; repeatable for each key', collect, [])
    .option('-a, --async', 'return once the pipeline has taken the check, without waiting for its result (as fly check-resource -a)')
    .option('--shallow', "check the resource itself only, as fly's; here every check is (see below)")
    .option('--team <name>', teamHelp('the pipeline'), oneTeam)
    .addHelpText(
      'after',
      `
Without --shallow, Concourse first checks the resource's type (a resource_types entry, and
its type's, up the chain) for a newer image. Causeway records no versions of resource types:
a custom type's image is pulled by its repository and tag the first time a worker needs it,
and kept, so every check is a shallow one and --shallow changes nothing.

Example:
  causeway check-resource -r booklit/repo --from ref:4c2f1e0`,
    )
    .action(lazy(() => impl().checkResource));

  program
    .command('resources')
    .alias('rs')
    .description("list a pipeline's resources: type, pinned version, how the last check went")
    .requiredOption('-p, --pipeline <name>', 'the pipeline: NAME, or NAME/k:v,... for an instance')
    .option(
      '--json',
      'print a JSON array: name, pipeline_name, pipeline_instance_vars (of an instance), type, last_checked (unix seconds), pinned_version, pinned_in_config, pin_comment, check_status, check_error',
    )
    .option('--team <name>', teamHelp('the pipeline'), oneTeam)
    .addHelpText(
      'after',
      `
The check status is how the resource's last check ended: succeeded, failed (its error on
stderr, and in --json), or n/a when it has not been checked yet.

Example:
  causeway resources -p booklit`,
    )
    .action(lazy(() => impl().resources));

  program
    .command('resource-versions')
    .alias('rvs')
    .description('list the versions a resource has, newest first: which are enabled, which is pinned')
    .requiredOption('-r, --resource <pipeline/resource>', 'the resource: PIPELINE/RESOURCE, or PIPELINE/k:v,.../RESOURCE for an instance')
    .option('-c, --count <count>', 'how many versions, newest first', positiveCount('--count'), 50)
    .option(
      '--json',
      'print a JSON array: id (check order), version, enabled, pinned, pin_comment (on the pinned version, when it has one)',
    )
    .option('--team <name>', teamHelp('the pipeline'), oneTeam)
    .action(lazy(() => impl().resourceVersions));

  for (const [command, enabled] of [
    ['disable-resource-version', false],
    ['enable-resource-version', true],
  ] as const) {
    const verb = enabled ? 'enable' : 'disable';
    program
      .command(command)
      .alias(enabled ? 'erv' : 'drv')
      .description(
        enabled
          ? 'enable a disabled version of a resource again: builds may get it'
          : "disable a version of a resource: no job's build gets it (but a pin of it)",
      )
      .requiredOption('-r, --resource <pipeline/resource>', 'the resource: PIPELINE/RESOURCE, or PIPELINE/k:v,.../RESOURCE for an instance')
      .option(
        '-v, --version <key:value>',
        `the version to ${verb}: a subset of its keys suffices, the newest match is ${verb}d; repeatable`,
        collect,
        [],
      )
      .addHelpText(
        'after',
        enabled
          ? `
Example:
  causeway enable-resource-version -r booklit/repo -v ref:4c2f1e0`
          : `
As Concourse's: a disabled version is skipped when a build's inputs are chosen (the next
enabled one is taken), also through passed:, and resource-versions shows it as not enabled;
a pin of it still gives it to the gets without passed: that the pin applies to.

Example:
  causeway disable-resource-version -r booklit/repo -v ref:4c2f1e0`,
      )
      .action(lazy(() => (opts: { resource: string; version: string[] }) => impl().toggleResourceVersion(opts, enabled)));
  }

  program
    .command('pin-resource')
    .alias('pr')
    .description("pin a resource to one of its versions: every job's get of it takes that version")
    .requiredOption('-r, --resource <pipeline/resource>', 'the resource: PIPELINE/RESOURCE, or PIPELINE/k:v,.../RESOURCE for an instance')
    .option(
      '-v, --version <key:value>',
      'the version (a subset of its keys suffices: the newest match is pinned); repeatable; optional with -c on a pinned resource',
      collect,
      [],
    )
    .option(
      '-c, --comment <text>',
      'save this comment with the pin (resource-versions shows it); the resource has to be pinned, or -v given',
    )
    .addHelpText(
      'after',
      `
A pin made again keeps its comment; unpin-resource drops both. A comment on a pin of the
pipeline file (a resource's \`version:\`) lasts until the pipeline is set again, as Concourse's.

Examples:
  causeway pin-resource -r booklit/repo -v ref:4c2f1e0 -c 'v1.2 breaks the docs build'
  causeway pin-resource -r booklit/repo -c 'still waiting on the upstream fix'`,
    )
    .action(lazy(() => impl().pinResource));

  program
    .command('unpin-resource')
    .alias('ur')
    .description('unpin a resource: jobs take its newest versions again (its pin comment goes too)')
    .requiredOption('-r, --resource <pipeline/resource>', 'the resource: PIPELINE/RESOURCE, or PIPELINE/k:v,.../RESOURCE for an instance')
    .action(lazy(() => impl().unpinResource));
}
