import { retryBuild, RetryError } from '../../common/retry';
import { buildUrl, openSession } from '../connect';
import { followUntilDone } from '../follow';
import { EXIT_CODES } from '../exit-codes';
import { exitWith } from '../main-helpers';
import { CliError, paint, say } from '../output';
import { renderOutcome } from '../render';
import { describeBuild } from './builds';

export async function retry(buildId: string, opts: { from?: string; detach?: boolean }): Promise<void> {
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
}
