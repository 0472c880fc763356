// NATS with credentials and least privilege, against the test stack's real nats-server: an
// anonymous client is refused; a watcher reads logs and the registry but cannot forge a log
// line, write the registry, land a worker or read a transfer; a worker cannot land another.
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { TRANSFER_BUCKET } from '../../common/transfer';
import { collectLogs } from '../../common/build-log';
import { natsAuth } from '../../common/nats-auth';
import { subjects } from '../../schemas/messages';
import { WORKER_BUCKET, workerControlSubject } from '../../schemas/workers';
import { sh, startHarness, type Harness } from './harness';

let h: Harness;
let watcher: NatsConnection;
let worker: NatsConnection;
beforeAll(async () => {
  h = await startHarness();
  const servers = process.env.NATS_URL!;
  watcher = await connect({ servers, name: 'watcher-test', ...natsAuth('watcher', h.home) });
  worker = await connect({ servers, name: 'worker-test', ...natsAuth('worker', h.home) });
});
afterAll(async () => {
  await watcher.close();
  await worker.close();
  await h.stop();
});

const PERMISSION = /permission|authorization/i;

test('an anonymous connection is refused', async () => {
  await expect(connect({ servers: process.env.NATS_URL!, reconnect: false, timeout: 5000 })).rejects.toThrow(PERMISSION);
});

test('a watcher reads a build but cannot forge its log, write the registry, land a worker or read transfers', async () => {
  const run = await h.run(`plan:\n- ${sh('say', 'echo real line')}`);
  expect(run.status).toBe('succeeded');

  // reading is what a watcher is for
  expect((await collectLogs(watcher, run.buildId)).get('plan.0')).toBe('real line\n');
  const registry = await new Kvm(watcher).open(WORKER_BUCKET);
  expect(await registry.get(h.worker.name)).not.toBeNull();

  const js = jetstream(watcher);
  await expect(js.publish(subjects.log(run.buildId, 'plan.0'), 'FORGED: all tests passed', { timeout: 3000 })).rejects.toThrow(PERMISSION);
  await expect(registry.put(h.worker.name, '{}')).rejects.toThrow(PERMISSION);
  await expect(watcher.request(workerControlSubject(h.worker.name), JSON.stringify({ action: 'land' }), { timeout: 3000 })).rejects.toThrow(
    PERMISSION,
  );
  await expect(new Objm(watcher).open(TRANSFER_BUCKET)).rejects.toThrow(PERMISSION);

  // what `causeway watch` shows holds no forged line
  expect((await collectLogs(h.nc, run.buildId)).get('plan.0')).toBe('real line\n');
});

test('a worker publishes logs but cannot land a worker', async () => {
  await expect(
    jetstream(worker).publish(subjects.log('build-auth-test', 'plan.0'), 'a worker may log', { timeout: 3000 }),
  ).resolves.toBeDefined();
  await expect(worker.request(workerControlSubject(h.worker.name), JSON.stringify({ action: 'land' }), { timeout: 3000 })).rejects.toThrow(
    PERMISSION,
  );
});
