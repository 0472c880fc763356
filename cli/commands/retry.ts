import type { Command } from 'commander';
import { EXIT_CODES } from '../../common/build-client';
import { retryBuild, RetryError } from '../../common/retry';
import { buildUrl, openSession } from '../connect';
import { followUntilDone } from '../follow';
import { exitWith } from '../main-helpers';
import { CliError, paint, say } from '../output';
import { renderOutcome } from '../render';
import { describeBuild } from './builds';

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
    .action(async (buildId: string, opts: { from?: string; detach?: boolean }) => {
      const session = await openSession({ autoStart: false });
      try {
        await describeBuild(session.client.workflow.getHandle(buildId));
        const since = new Date();
        let retried: Awaited<ReturnType<typeof retryBuild>>;
        try {
          retried = await retryBuild(session.client, session.namespace, buildId, { from: opts.from });
        } catch (err) {
          if (err instanceof RetryError) throw new CliError(err.message, err.fix);
          throw err;
        }
        say(
          `${paint('bold', `retrying ${buildId}`)} from step ${retried.stepId} (run ${retried.runId}, retrying ${retried.previousRunId}); the steps before it keep their results`,
        );
        const url = buildUrl(session, buildId);
        if (url) say(`  ${url}`);
        if (opts.detach) return;
        const started = Date.now();
        const outcome = await followUntilDone(session, session.client.workflow.getHandle(buildId, retried.runId), {
          abortOnInterrupt: true,
          since,
        });
        console.log(renderOutcome(buildId, outcome, Date.now() - started, url));
        exitWith(EXIT_CODES[outcome.status]);
      } finally {
        await session.close();
      }
    });
}
