// Abort, timeout, OOM and a worker killed with SIGKILL, with containers: as on the local runtime.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { awaitBuild, startBuild } from '../../common/build-client';
import { collectLogs, collectServiceLogs } from '../../common/build-log';
import { DEV_DEFAULT_IMAGE } from '../../cli/dev/containerd';
import { compilePlan } from '../../schemas';
import { testStack } from '../setup/env';
import { waitFor, type Harness } from '../workflows/harness';
import { BUSYBOX, containerd, ctr, mountsOf, notesOf, startContainerdHarness, task } from './harness';

const MB = 1024 * 1024;
const CLI = path.resolve(__dirname, '../../dist/cli/main.js');

let h: Harness;
beforeAll(async () => {
  h = await startContainerdHarness({ killGraceMs: 1000 });
});
afterAll(async () => {
  await h.stop();
});

/** Running containers (tasks) in containerd whose command line has `marker`. */
function running(): string[] {
  return ctr(['tasks', 'ls'])
    .split('\n')
    .slice(1)
    .filter((l) => /RUNNING/.test(l))
    .map((l) => l.split(/\s+/)[0]);
}

function nothingLeft(buildId: string): void {
  expect(ctr(['containers', 'ls', '-q']).trim()).toBe('');
  expect(mountsOf(h.home, buildId)).toEqual([]);
}

test('abort stops the container (SIGTERM, then SIGKILL: a shell as pid 1 ignores SIGTERM) and removes it', async () => {
  const handle = await h.start(`plan:\n- ${task('sleep', 'echo up; sleep 300', {}, { image_resource: BUSYBOX })}`);
  await waitFor('the container to run', () => running().length > 0);
  await handle.cancel();
  const r = await h.finish(handle);
  expect(r.status).toBe('aborted');
  expect(await notesOf(h.nc, r.buildId, 'plan.0')).toMatch(/aborted: sending SIGTERM[\s\S]*step killed \(SIGKILL\)/);
  expect(running()).toEqual([]);
  nothingLeft(r.buildId);
});

test('a step’s timeout stops its container; a trap on SIGTERM runs', async () => {
  const script = 'trap "echo got TERM; exit 7" TERM; echo up; while true; do sleep 0.1; done';
  const r = await h.run(`plan:\n- ${task('slow', script, { timeout: '2s' }, { image_resource: BUSYBOX })}`);
  expect(r.status).toBe('failed');
  expect(r.message).toContain('timeout exceeded (2s)');
  expect(r.logs.get('plan.0')).toContain('got TERM');
  nothingLeft(r.buildId);
});

test('memory over container_limits is OOM-killed and reported as such', async () => {
  const hog = 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived';
  const r = await h.run(`plan:\n- ${task('hog', hog, {}, { image_resource: BUSYBOX, container_limits: { memory: 32 * MB } })}`);
  expect(r.status).toBe('failed');
  expect(r.summary?.steps.find((s) => s.id === 'plan.0')?.exitCode).toBe(137);
  expect(r.logs.get('plan.0') ?? '').not.toContain('survived');
  expect(await notesOf(h.nc, r.buildId, 'plan.0')).toContain('exceeded container_limits.memory (OOM)');
  const ok = await h.run(
    `plan:\n- ${task('small', 'echo fine', {}, { image_resource: BUSYBOX, container_limits: { memory: 32 * MB, cpu: 512 } })}`,
  );
  expect(ok.status).toBe('succeeded');
  nothingLeft(r.buildId);
});

describe('a worker killed with SIGKILL', () => {
  const queue = `cd-kill-${randomUUID().slice(0, 8)}`;
  const name = `cd-kill-${randomUUID().slice(0, 8)}`;
  let worker: ChildProcess | undefined;
  const start = (): ChildProcess => {
    const stack = testStack();
    const c = containerd();
    const log = fs.openSync(path.join(stack.home, 'logs', `${name}.log`), 'a');
    const child = spawn(
      process.execPath,
      [
        CLI,
        'worker',
        '--runtime',
        'containerd',
        '--name',
        name,
        '--containerd-socket',
        c.socket,
        '--registry-hosts',
        c.hostsDir,
        '--default-image',
        DEV_DEFAULT_IMAGE,
        '--grace-period',
        '1',
      ],
      {
        env: {
          ...process.env,
          TEMPORAL_ADDRESS: stack.temporalAddress,
          NATS_URL: stack.natsUrl,
          CAUSEWAY_HOME: stack.home,
          CAUSEWAY_TASK_QUEUE: queue,
        },
        stdio: ['ignore', log, log],
      },
    );
    fs.closeSync(log);
    return child;
  };
  // Each test's last worker goes with it: the next test's worker must be the only one on the queue.
  afterEach(async () => {
    const w = worker;
    worker = undefined;
    if (!w || w.exitCode !== null || w.signalCode !== null) return;
    const exited = new Promise((r) => w.once('exit', r));
    w.kill('SIGKILL');
    await exited;
  });

  test('leaves its container running; the worker started again re-attaches to it by name, and it runs once', async () => {
    if (!fs.existsSync(CLI)) throw new Error('run `npm run build` first (npm test does)');
    worker = start();
    const plan = compilePlan({
      text: `plan:\n- ${task('long', 'echo started; sleep 4; echo done', {}, { image_resource: BUSYBOX })}`,
      file: 'kill.yml',
    });
    const handle = await startBuild(h.client, { plan, taskQueue: queue });
    await waitFor('the container to run', () => running().length > 0);
    const before = running();
    worker.kill('SIGKILL');
    await new Promise((r) => worker!.once('exit', r));
    // The container outlives its worker.
    expect(running()).toEqual(before);
    worker = start();
    const outcome = await awaitBuild(handle);
    expect(outcome.status).toBe('succeeded');
    const log = (await collectLogs(h.nc, handle.workflowId)).get('plan.0') ?? '';
    expect(log.match(/started/g)).toHaveLength(1);
    expect(log).toContain('done');
    nothingLeft(handle.workflowId);
  });

  test('leaves its service’s container running too; the worker started again re-attaches to it and stops it at the step’s end', async () => {
    if (!fs.existsSync(CLI)) throw new Error('run `npm run build` first (npm test does)');
    worker = start();
    const service = {
      name: 'svc',
      config: {
        image_resource: BUSYBOX,
        run: { path: 'sh', args: ['-c', "trap 'echo got TERM; exit 0' TERM; echo up; while :; do sleep 0.1; done"] },
      },
    };
    const plan = compilePlan({
      text: `plan:\n- ${task('long', 'echo started; sleep 4; echo done', { services: [service] }, { image_resource: BUSYBOX })}`,
      file: 'kill-service.yml',
    });
    const handle = await startBuild(h.client, { plan, taskQueue: queue });
    // The service's container and the task's.
    await waitFor('the service and the task to run', () => running().length >= 2);
    const before = running();
    worker.kill('SIGKILL');
    await new Promise((r) => worker!.once('exit', r));
    expect(running()).toEqual(expect.arrayContaining(before));
    worker = start();
    const outcome = await awaitBuild(handle);
    expect([outcome.status, outcome.message]).toEqual(['succeeded', undefined]);
    const log = (await collectLogs(h.nc, handle.workflowId)).get('plan.0') ?? '';
    expect(log.match(/started/g)).toHaveLength(1);
    // Started once, stopped by the restarted worker with SIGTERM.
    const svc = (await collectServiceLogs(h.nc, handle.workflowId)).get('plan.0/svc') ?? '';
    expect(svc.match(/^up$/gm)).toHaveLength(1);
    expect(svc).toContain('got TERM');
    nothingLeft(handle.workflowId);
  });
});

test('`causeway reconcile` by hand removes the container, root and snapshot of a build terminated without its teardown', async () => {
  const handle = await h.start(`plan:\n- ${task('orphan', 'sleep 300', {}, { image_resource: BUSYBOX })}`);
  await waitFor('the container to run', () => running().length > 0);
  // Once the task has started, the worker mounts a root for the build's next task (spare.ts);
  // a reconcile before that mount is there would leave it behind (the worker still works for the build).
  await waitFor('the spare root', () => mountsOf(h.home, handle.workflowId).some((m) => m.includes('/spare-roots/')));
  // terminate runs no workflow code: no abort, no finishBuild.
  await handle.terminate('test: a build ended without its teardown');
  expect(running()).not.toEqual([]);
  // `causeway reconcile` by hand, as after `temporal workflow terminate`.
  const stack = testStack();
  const cli = spawnSync(process.execPath, [CLI, 'reconcile', '--containerd-socket', containerd().socket], {
    encoding: 'utf8',
    env: { ...process.env, TEMPORAL_ADDRESS: stack.temporalAddress, NATS_URL: stack.natsUrl, CAUSEWAY_HOME: h.home },
  });
  expect([cli.status, cli.error]).toEqual([0, undefined]);
  // It reports on stderr, as every command does.
  expect(cli.stderr).toContain('removed the containers, roots and snapshots of closed builds in containerd');
  await waitFor('the container to be gone', () => running().length === 0, 10_000);
  nothingLeft(handle.workflowId);
  expect(
    ctr(['snapshots', 'ls'])
      .split('\n')
      .filter((l) => l.startsWith('cw-')),
  ).toEqual([]);
});
