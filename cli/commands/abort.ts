import { openSession } from '../connect';
import { say } from '../output';
import { buildIdOf, parseBuildRef } from './build-ref';
import { describeBuild } from './builds';

export async function abort(build: string | undefined, opts: { job?: string; build?: string }): Promise<void> {
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
    await handle.cancel();
    say(`abort requested for ${buildId}; \`causeway watch ${buildId}\` shows its hooks and final status`);
  } finally {
    await session.close();
  }
}
