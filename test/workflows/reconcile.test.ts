// `temporal workflow terminate` runs no workflow code, so its teardown never runs: the
// reconciler must find the build closed, stop what it left running, and collect it. A pipeline's
// check leases a uid as a build does: it is released once the worker that ran the check is gone.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { reconcileBuilds } from '../../activities/reconcile';
import { checkDir, checkId, releaseCheck } from '../../activities/runtime/local/check';
import { mountsUnder } from '../../activities/runtime/local/inputs';
import { buildUser, leasedBuilds } from '../../activities/runtime/local/isolation';
import { startBuild } from '../../common/build-client';
import { compilePlan } from '../../schemas';
import { startHarness, type Harness } from './harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.stop());

const running = (marker: string) => {
  try {
    return execFileSync('pgrep', ['-f', marker]).toString().trim().length > 0;
  } catch {
    return false;
  }
};

test('after terminate, the reconciler stops the step left running, unmounts its input and removes the build once expired', async () => {
  const marker = `reconcile-${randomUUID()}`;
  const plan = compilePlan({
    file: 't.yml',
    text:
      `plan:\n- task: produce\n  config:\n    platform: linux\n    outputs: [{name: out}]\n    run: {path: sh, args: [-c, 'echo x > out/f']}\n` +
      `- task: forever\n  config:\n    platform: linux\n    inputs: [{name: out}]\n    run: {path: sh, args: [-c, 'sleep 60 # ${marker}']}\n`,
  });
  const handle = await startBuild(h.client, { plan, taskQueue: h.taskQueue });
  while (!running(marker)) await delay(100);

  // The reconciler's case: the build is terminated while its worker is away. (With the
  // worker up, the step's activity learns at its next heartbeat and stops the step itself.)
  await h.worker.shutdown();
  await handle.terminate('testing the reconciler');
  expect(running(marker)).toBe(true);

  const dry = await reconcileBuilds({ home: h.home, client: h.client, retentionMs: 24 * 3600_000, killGraceMs: 1000, dryRun: true });
  expect(dry.stopped.some((s) => s.buildId === handle.workflowId)).toBe(true);
  expect(running(marker)).toBe(true);
  const buildDir = path.join(h.home, 'builds', handle.workflowId);
  const views = await mountsUnder(buildDir);
  expect(views).toHaveLength(1);
  expect(dry.unmounted).toEqual(expect.arrayContaining(views));

  const report = await reconcileBuilds({ home: h.home, client: h.client, retentionMs: 24 * 3600_000, killGraceMs: 1000 });
  expect(report.stopped.filter((s) => s.buildId === handle.workflowId)).toHaveLength(1);
  expect(running(marker)).toBe(false);
  expect(report.unmounted).toEqual(expect.arrayContaining(views));
  expect(await mountsUnder(buildDir)).toEqual([]);
  expect(fs.existsSync(buildDir)).toBe(true);

  const expired = await reconcileBuilds({ home: h.home, client: h.client, retentionMs: 0, killGraceMs: 1000 });
  expect(expired.removed).toContain(path.join(h.home, 'builds', handle.workflowId));
  expect(fs.existsSync(path.join(h.home, 'builds', handle.workflowId))).toBe(false);
});

test("the reconciler releases a check's uid once the worker that ran it is gone, never while it lives", async () => {
  // A check lease of a worker process that has exited (a worker killed mid-check), and one of this live process.
  const gone = execFileSync('sh', ['-c', 'echo $$']).toString().trim();
  const dead = checkId('p', 'r').replace(/^check-\d+\./, `check-${gone}.`);
  const live = checkId('p', 'r');
  for (const id of [dead, live]) {
    await buildUser(h.home, id);
    fs.mkdirSync(checkDir(h.home, id), { recursive: true });
  }
  const report = await reconcileBuilds({ home: h.home, client: h.client, retentionMs: 24 * 3600_000, killGraceMs: 1000 });
  expect(report.uids).toContain(dead);
  expect(report.uids).not.toContain(live);
  expect(await leasedBuilds(h.home)).not.toContain(dead);
  expect(fs.existsSync(checkDir(h.home, dead))).toBe(false);
  expect(await leasedBuilds(h.home)).toContain(live);
  await releaseCheck(h.home, live);
  expect(await leasedBuilds(h.home)).not.toContain(live);
});
