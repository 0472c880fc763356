import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { DeterminismViolationError } from '@temporalio/workflow';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { causewayDataConverter, loadCodecKeys } from '../../common/codec';
import { openSession } from '../connect';
import { exitWith } from '../main-helpers';
import { CliError, paint, say } from '../output';

export function registerReplay(program: Command): void {
  program
    .command('replay')
    .description("replay a build's history against the current workflow code to check it is still deterministic")
    .argument('[build]', 'build id to fetch the history of')
    .option('--history <file>', 'a history JSON file instead (from the Temporal UI "Download" or `temporal workflow show -o json`)')
    .addHelpText(
      'after',
      `
A change to workflows/ that would break builds already running fails here, naming the
event where the new code disagrees with the recorded history. Exit 0 when deterministic,
1 when not.

Examples:
  causeway replay build-3f2c…
  causeway replay --history test/fixtures/histories/ci.json`,
    )
    .action(async (buildId: string | undefined, opts: { history?: string }) => {
      // The CLI's own output is the interface; the SDK speaks only when something is wrong.
      Runtime.install({ logger: new DefaultLogger('WARN') });
      if (!buildId === !opts.history) throw new CliError('give either a build id or --history FILE');
      let history: unknown;
      let id = buildId ?? path.basename(opts.history ?? '', '.json');
      if (opts.history) {
        try {
          history = historyFromJSON(JSON.parse(fs.readFileSync(opts.history, 'utf8')));
        } catch (err) {
          throw new CliError(`cannot read history ${opts.history}: ${(err as Error).message}`);
        }
      } else {
        const session = await openSession({ autoStart: false });
        try {
          history = await session.client.workflow.getHandle(id).fetchHistory();
        } finally {
          await session.close();
        }
      }
      id = id || 'replay';
      say(`replaying ${id} against workflows/ ...`);
      try {
        await Worker.runReplayHistory(
          { workflowsPath: require.resolve('../../workflows'), dataConverter: causewayDataConverter(loadCodecKeys()) },
          history,
          id,
        );
      } catch (err) {
        if (err instanceof DeterminismViolationError) {
          console.log(`${paint('red', 'not deterministic:')} ${err.message}`);
          exitWith(1);
          return;
        }
        throw err;
      }
      console.log(`${paint('green', 'deterministic:')} the current workflow code replays ${id} without a difference`);
    });
}
