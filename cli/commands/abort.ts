import { openSession } from '../connect';
import { say } from '../output';
import { buildIdOf, parseBuildRef } from './build-ref';
import { describeBuild } from './builds';

/** The reason a forced abort terminates a build's workflow with: outcomeOf shows it as `terminated: …`. */
const FORCED_ABORT_REASON = 'aborted with --force';

export async function abort(build: string | undefined, opts: { job?: string; build?: string; force?: boolean }): Promise<void> {
  const ref = parseBuildRef(build, opts, 'abort');
  const session = await openSession({ autoStart: false });
  try {
    const buildId = await buildIdOf(session.client, ref);
    const handle = session.client.workflow.getHandle(buildId);
    const info = await describeBuild(handle);
    if (info.status.name !== 'RUNNING') {
      say(`build ${buildId} already ended (${info.status.name.toLowerCase()}); nothing to abort`);
      return;
    }
    if (opts.force) {
      // fly's --force: no waiting for the workflow's cancellation (hooks, steps' SIGTERM); the
      // workers' reconciler stops what the build left running once its workflow is closed.
      await handle.terminate(FORCED_ABORT_REASON);
      say(`build ${buildId} forcefully aborted: its hooks did not run; workers' reconcile stops what it left running`);
      return;
    }
    await handle.cancel();
    say(`abort requested for ${buildId}; \`causeway watch ${buildId}\` shows its hooks and final status`);
  } finally {
    await session.close();
  }
}
