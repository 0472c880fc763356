import fs from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { DeterminismViolationError } from '@temporalio/workflow';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { causewayDataConverter, loadCodecKeys } from '../../common/codec';
import { WORKFLOW_BUNDLER_OPTIONS } from '../../workers/bundle';
import { openSession } from '../connect';
import { exitWith } from '../main-helpers';
import { CliError, paint, say } from '../output';

export async function replay(buildId: string | undefined, opts: { history?: string }): Promise<void> {
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
      {
        workflowsPath: require.resolve('../../workflows'),
        bundlerOptions: WORKFLOW_BUNDLER_OPTIONS,
        dataConverter: causewayDataConverter(loadCodecKeys()),
      },
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
}
