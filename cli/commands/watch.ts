import type { Command } from 'commander';
import { awaitBuild, EXIT_CODES, EXIT_STILL_RUNNING } from '../../common/build-client';
import { readBuild } from '../../common/build-log';
import { buildUrl, openSession } from '../connect';
import { followUntilDone } from '../follow';
import { exitWith } from '../main-helpers';
import { CliError, say } from '../output';
import { BuildRenderer, renderOutcome } from '../render';
import { describeBuild } from './builds';

export function registerWatch(program: Command): void {
  program
    .command('watch')
    .description("show a build's log from its start, then follow it until it ends")
    .argument('<build>', 'build id (build-…), as `causeway run` and `causeway builds` print it')
    .option('--no-follow', 'print what the build logged so far and return')
    .option('--services', "interleave each service's output with the steps', prefixed [svc NAME] (the default)")
    .option('--no-services', "leave the services' output out (the last lines of each still show when the build fails)")
    .addHelpText(
      'after',
      `
Works during and after a build; exits with the build status (0 succeeded, 1 failed,
2 errored, 3 aborted). With --no-follow on a build still running: exits ${EXIT_STILL_RUNNING}.

Example:
  causeway watch build-3f2c…`,
    )
    .action(async (buildId: string, opts: { follow: boolean; services?: boolean }) => {
      const session = await openSession({ autoStart: false });
      try {
        const handle = session.client.workflow.getHandle(buildId);
        const info = await describeBuild(handle);
        if (!opts.follow) {
          const renderer = new BuildRenderer(process.stdout, { showSteps: () => true, showServices: opts.services !== false });
          for await (const r of readBuild(session.nc, buildId, { follow: false })) renderer.write(r);
          if (!info.closeTime) {
            say(`build ${buildId} is still running (exit ${EXIT_STILL_RUNNING}); follow it with: causeway watch ${buildId}`);
            return exitWith(EXIT_STILL_RUNNING);
          }
          return exitWith(EXIT_CODES[(await awaitBuild(handle)).status]);
        }
        const started = info.startTime.getTime();
        const outcome = await followUntilDone(session, handle, { abortOnInterrupt: false, showServices: opts.services !== false });
        console.log(renderOutcome(buildId, outcome, (info.closeTime ?? new Date()).getTime() - started, buildUrl(session, buildId)));
        exitWith(EXIT_CODES[outcome.status]);
      } finally {
        await session.close();
      }
    });
}

export function notFound(buildId: string): CliError {
  return new CliError(`no build ${buildId}`, 'list recent builds with `causeway builds`');
}
