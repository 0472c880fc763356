// The CLI as a script sees it: --detach prints the id alone, --json everywhere it lists
// something, exit codes that tell a running build from a finished one, and a build waiting
// for a worker said to be waiting (and why) instead of silence.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { listWorkers, workerBucket } from '../../workers/registry';
import { stalledWorkerRecord, startHarness, waitFor, type Harness } from '../workflows/harness';
import { requireBuiltCli, runCli, type CliResult, type CliOptions } from './cli-runner';

let h: Harness;
let dir: string;

beforeAll(async () => {
  requireBuiltCli();
  h = await startHarness();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-client-cli-'));
  // Steps run under their build's uid (docs/security.md) and wait for a gate file in here.
  fs.chmodSync(dir, 0o755);
});
afterAll(async () => {
  await h.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

function cli(args: string[], opts: { queue?: string; onStderr?: CliOptions['onStderr'] } = {}): Promise<CliResult> {
  return runCli(args, { cwd: dir, queue: opts.queue ?? h.taskQueue, onStderr: opts.onStderr });
}

function plan(name: string, script: string): string {
  const file = path.join(dir, `${name}.yml`);
  fs.writeFileSync(
    file,
    `name: ${name}\nplan:\n- task: only\n  config:\n    platform: linux\n    run: {path: sh, args: [-c, '${script}']}\n`,
  );
  return file;
}

test('run --detach prints the build id alone on stdout; watch --no-follow exits 4 while it runs, then its status', async () => {
  const gate = path.join(dir, `gate-${randomUUID()}`);
  const r = await cli(['run', plan('gated', `while [ ! -e ${gate} ]; do sleep 0.1; done; exit 1`), '--detach']);
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/^build-[0-9a-f-]+\n$/);
  const buildId = r.stdout.trim();

  const running = await cli(['watch', buildId, '--no-follow']);
  expect(running.code).toBe(4);
  expect(running.stderr).toContain(`build ${buildId} is still running (exit 4)`);

  fs.writeFileSync(gate, '');
  await h.finish(h.client.workflow.getHandle(buildId));
  expect((await cli(['watch', buildId, '--no-follow'])).code).toBe(1);

  const status = await cli(['status', buildId, '--json']);
  expect(status.code).toBe(0);
  const summary = JSON.parse(status.stdout);
  expect(summary).toMatchObject({ buildId, plan: 'gated', status: 'failed' });
  expect(summary.steps.find((s: { id: string }) => s.id === 'plan.0')).toMatchObject({ name: 'only', state: 'failed', exitCode: 1 });

  const builds = await cli(['builds', '--json', '--plan', 'gated']);
  expect(builds.code).toBe(0);
  expect(JSON.parse(builds.stdout)[0]).toMatchObject({ buildId, plan: 'gated', status: 'failed', closeTime: expect.any(String) });
});

test('run --detach --json, and workers --json', async () => {
  const r = await cli(['run', plan('quick', 'true'), '--detach', '--json']);
  expect(r.code).toBe(0);
  const started = JSON.parse(r.stdout);
  expect(started).toMatchObject({ buildId: expect.stringMatching(/^build-/), plan: 'quick' });
  await h.finish(h.client.workflow.getHandle(started.buildId));

  const workers = await cli(['workers', '--json']);
  expect(workers.code).toBe(0);
  expect(JSON.parse(workers.stdout)).toEqual(
    expect.arrayContaining([expect.objectContaining({ taskQueue: expect.any(String), state: expect.any(String) })]),
  );
});

test("fly's flags: builds -c, --since and --until; watch -t; prune-worker -w and --all-stalled", async () => {
  const r = await cli(['run', plan('counted', 'echo counted'), '--detach']);
  await h.finish(h.client.workflow.getHandle(r.stdout.trim()));
  const listed = async (...args: string[]) =>
    JSON.parse((await cli(['builds', '--json', '--plan', 'counted', ...args])).stdout) as unknown[];
  expect(await listed('-c', '1')).toHaveLength(1);
  expect(await listed('--since', '2000-01-01 00:00:00', '--until', '2999-01-01 00:00:00')).toHaveLength(1);
  expect(await listed('--since', '2999-01-01 00:00:00')).toEqual([]);
  const stamped = await cli(['watch', r.stdout.trim(), '-t']);
  expect(stamped.code).toBe(0);
  // Every line of the log, not the closing summary.
  const logLines = stamped.stdout.split('\n').filter((l) => l && !l.startsWith('build '));
  expect(logLines).toHaveLength(3);
  for (const line of logLines) expect(line).toMatch(/^\d\d:\d\d:\d\d {2}/);
  const badTime = await cli(['builds', '--since', 'yesterday']);
  expect(badTime).toMatchObject({
    code: 2,
    stderr: expect.stringContaining('--since yesterday: the time should be in the format yyyy-mm-dd HH:mm:ss'),
  });

  // Two workers that died: their records stay, no longer refreshed.
  const kv = await workerBucket(h.nc);
  const names = [`w-${randomUUID().slice(0, 8)}`, `w-${randomUUID().slice(0, 8)}`];
  for (const name of names) await kv.put(name, JSON.stringify(stalledWorkerRecord(name)));
  expect(await cli(['prune-worker', '-w', names[0]])).toMatchObject({
    code: 0,
    stderr: expect.stringContaining(`pruned worker ${names[0]}`),
  });
  const all = await cli(['prune-worker', '--all-stalled']);
  expect(all).toMatchObject({ code: 0, stderr: expect.stringContaining(`pruned worker ${names[1]}`) });
  expect((await listWorkers(kv)).map((w) => w.name)).not.toContain(names[1]);
  // The live worker is not stalled: nothing left to prune.
  expect((await cli(['prune-worker', '-a'])).stderr).toContain('no stalled workers');
});

test('retry reruns a failed build; builds tells its runs apart and marks the retry', async () => {
  // Steps run under their build's uid: the flag's directory is writable by any.
  const flags = fs.mkdtempSync(path.join(dir, 'flags-'));
  fs.chmodSync(flags, 0o1777);
  const flag = path.join(flags, 'failed-once');
  const failed = await cli(['run', plan('flaky', `test -e ${flag} || { touch ${flag}; exit 1; }; echo ok now`)]);
  expect(failed.code).toBe(1);
  const buildId = /build (build-[0-9a-f-]+)/.exec(failed.stderr)![1];
  const retried = await cli(['retry', buildId]);
  expect(retried).toMatchObject({ code: 0, stdout: expect.stringContaining('ok now') });
  const rows = (await cli(['builds', '--plan', 'flaky'])).stdout.split('\n').filter((l) => l.startsWith(buildId));
  expect(rows).toHaveLength(2);
  // Run ids are UUIDv7: the column shows their random end, so two runs a second apart differ.
  const [newer, older] = rows.map((r) => r.split(/\s+/)[1]);
  expect(newer).not.toBe(older);
  expect(rows[0]).toContain(`retry of run ${older}`);
});

test('a build no worker polls for: run says it waits and why; status answers in seconds and says why', async () => {
  const queue = `nobody-${randomUUID()}`;
  let buildId: string | undefined;
  const run = await cli(['run', plan('orphan', 'true')], {
    queue,
    onStderr: (text, child) => {
      buildId ??= /build (build-[0-9a-f-]+) started/.exec(text)?.[1];
      if (text.includes('waiting for a worker')) child.kill('SIGKILL');
    },
  });
  expect(run.stderr).toContain(`waiting for a worker: no worker polls task queue '${queue}'`);
  expect(run.stderr).toContain('causeway worker');
  await waitFor('the build id', () => buildId);

  const status = await cli(['status', buildId!], { queue });
  expect(status.code).toBe(2);
  expect(status.stderr).toContain('no worker answered its status query within 5 s');
  expect(status.stderr).toContain(`no worker polls task queue '${queue}'`);
  // The Temporal UI's Details say it too: set at start by the client, as no worker runs the workflow.
  const details = await (await h.client.workflow.getHandle(buildId!).describe()).staticDetails();
  expect(details).toContain(`**Current Details empty?** Then no worker has started this build yet`);
  expect(details).toContain(`task queue \`${queue}\``);
  await h.client.workflow.getHandle(buildId!).terminate('test cleanup');
});
