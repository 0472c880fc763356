// Causeway's own notes in a step's log after a retried attempt resumes from a heartbeat that
// lags the notes already sent: the retry's notes must neither vanish (an id JetStream already
// holds for another note) nor appear twice (the same note sent again). Against the real NATS.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import type { NatsConnection } from '@nats-io/transport-node';
import { readBuild } from '../../common/build-log';
import { BuildPublisher, connectNats, ensureBuildStream } from '../../common/nats';
import { StepLog } from '../../activities/runtime/local/step-log';
import { testStack } from '../setup/env';
import { stepWritableDir } from '../setup/step-dir';

const stack = testStack();
let nc: NatsConnection;
let dir: string;

beforeAll(async () => {
  nc = await connectNats(stack.natsUrl, 'step-log-test', { home: stack.home });
  await ensureBuildStream(nc, 3600);
  dir = stepWritableDir('causeway-step-log-');
});

afterAll(async () => {
  await nc?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function notes(buildId: string): Promise<string> {
  let text = '';
  for await (const rec of readBuild(nc, buildId, { follow: false }))
    if (rec.kind === 'log' && rec.stream === 'causeway') text += Buffer.from(rec.data).toString('utf8');
  return text;
}

test('a retry resuming from lagging note numbers keeps every note once, in order', async () => {
  const buildId = `build-${randomUUID()}`;
  const publisher = new BuildPublisher(nc);
  const runName = 'run/plan.0/1';
  const first = new StepLog(publisher, buildId, 'plan.0', dir, runName);
  await first.note('network namespace x');
  await first.note('memory limit y');
  // The worker died before the heartbeat carried notes: 2; the retry resumes from notes: 0.
  const retry = new StepLog(publisher, buildId, 'plan.0', dir, runName, { stdout: 0, stderr: 0, notes: 0 });
  await retry.note('network namespace x');
  await retry.note('timeout exceeded: sending SIGTERM');
  retry.noteLater('step stopped');
  await retry.note('step killed (SIGKILL)');
  // noteLater is not waited for: its number was taken at once, its publish follows on the same connection.
  await nc.flush();
  const text = await notes(buildId);
  expect(text.split('\n').filter(Boolean).sort()).toEqual(
    ['network namespace x', 'memory limit y', 'timeout exceeded: sending SIGTERM', 'step stopped', 'step killed (SIGKILL)'].sort(),
  );
  expect(text.indexOf('memory limit y')).toBeLessThan(text.indexOf('timeout exceeded'));
});
