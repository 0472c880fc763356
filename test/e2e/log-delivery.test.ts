// The CLI prints every line a build's steps wrote, however far its reading of the log trails
// the build's result: at load, 50 MB of log lines once came out cut short (BENCHMARKS.md,
// bench:peers) because the CLI waited a fixed 3 s for the rest of the log after the result.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readState } from '../../cli/dev/state';
import { startHarness, type Harness } from '../workflows/harness';
import { CAUSEWAY_BIN, requireBuiltCli } from './cli-runner';

let h: Harness;
let dir: string;

beforeAll(async () => {
  requireBuiltCli();
  h = await startHarness();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-log-delivery-'));
});
afterAll(async () => {
  await h.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Longer than the 3 s the CLI used to wait for the log after the build's result. */
const NATS_PAUSE_MS = 5000;

test('watch prints a finished build’s whole log though NATS pauses mid-read for longer than any grace period', async () => {
  // ~15 MB in 64 KiB messages: more than the CLI's consumer asks for at once, so it must go back to NATS for the rest.
  const script = `seq -f 'line %09.0f of a log all of which must be delivered' 1 300000`;
  const expected = spawnSync('sh', ['-c', script], { maxBuffer: 2 ** 26 }).stdout.toString();
  const build = await h.run(`plan:\n- task: chatty\n  config:\n    platform: linux\n    run: {path: sh, args: [-c, "${script}"]}`);
  expect(build.status).toBe('succeeded');
  // JetStream holds the whole log: any loss below is the CLI's.
  expect(build.logs.get('plan.0')).toBe(expected);

  const nats = readState(h.home)!.nats.pid;
  let paused = false;
  const child = spawn(CAUSEWAY_BIN, ['watch', build.buildId], {
    cwd: dir,
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let resume: NodeJS.Timeout | undefined;
  const cont = () => {
    if (paused) process.kill(nats, 'SIGCONT');
    paused = false;
  };
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        // The first lines are out, the rest still in NATS, and the build long over: NATS stops answering for a while.
        if (!paused && resume === undefined) {
          process.kill(nats, 'SIGSTOP');
          paused = true;
          resume = setTimeout(cont, NATS_PAUSE_MS);
        }
      });
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', resolve);
    });
    expect({ code, stderr }).toEqual({ code: 0, stderr: expect.any(String) });
  } finally {
    clearTimeout(resume);
    cont();
  }
  expect(resume).toBeDefined();
  expect(stdout.match(/^line \d+ of a log/gm)?.length).toBe(300000);
  expect(stdout.includes(expected)).toBe(true);
});
