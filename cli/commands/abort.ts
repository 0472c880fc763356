import type { Command } from 'commander';
import { openSession } from '../connect';
import { say } from '../output';
import { describeBuild } from './builds';

export function registerAbort(program: Command): void {
  program
    .command('abort')
    .description('abort a running build: its steps get SIGTERM, then SIGKILL; on_abort and ensure hooks run')
    .argument('<build>', 'build id')
    .addHelpText('after', '\nExample:\n  causeway abort build-3f2c…')
    .action(async (buildId: string) => {
      const session = await openSession({ autoStart: false });
      try {
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
    });
}
