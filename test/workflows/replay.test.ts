// Replays every committed history against the current workflow code: a change that would
// break builds already running (non-determinism) fails here. Regenerate the fixtures with
// `npm run fixtures:histories` only for an intended, versioned change.
import fs from 'node:fs';
import path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { Worker } from '@temporalio/worker';
import { sharedBundle } from './harness';
import { testStack } from '../setup/env';

const DIR = path.resolve(__dirname, '../fixtures/histories');
const fixtures = fs.readdirSync(DIR).filter((f) => f.endsWith('.json'));

test('there are committed histories to replay', () => {
  expect(fixtures.length).toBeGreaterThanOrEqual(5);
});

test.each(fixtures)('%s replays deterministically', async (file) => {
  const history = historyFromJSON(JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8')));
  const bundle = await sharedBundle(testStack().home);
  // The id it was recorded under (record-histories.ts): a build's child workflow ids derive from it.
  const workflowId = `fixture-${path.basename(file, '.json')}`;
  await expect(Worker.runReplayHistory({ workflowBundle: bundle }, history, workflowId)).resolves.toBeUndefined();
});
