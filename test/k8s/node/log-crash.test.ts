// A step pod's log on JetStream is byte-exact through worker crashes, as test/e2e/log-crash.test.ts
// proves for the local runtime: a chatty step (lines of many lengths, an unfinished last line) runs
// on the real node while the dev stack's kubernetes worker is SIGKILLed twice; `causeway dev up`
// starts it again each time, the new worker re-attaches and reads the container's log through
// the kubelet from its start. Afterwards the step's log on JetStream is exactly what it printed.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { readBuild } from '../../../common/build-log';
import { connectNats } from '../../../common/nats';
import { readState } from '../../../cli/dev/state';

jest.setTimeout(600_000);

const BIN = path.resolve(__dirname, '../../../bin/causeway');
const LINES = 300;
let dir: string;
let nc: NatsConnection | undefined;

afterAll(async () => {
  await nc?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

function cli(args: string[], onOutput?: (out: string) => void): Promise<{ code: number | null; stdout: string }> {
  const home = process.env.CAUSEWAY_TEST_DEV_HOME!;
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, { env: { ...process.env, CAUSEWAY_HOME: home, NO_COLOR: '1' } });
    let stdout = '';
    const more = (d: Buffer) => {
      stdout += d.toString();
      onOutput?.(stdout);
    };
    child.stdout.on('data', more);
    child.stderr.on('data', more);
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout }));
  });
}

/** What the step prints: line i carries i % 97 x's; the last line has no newline. */
function expected(): string {
  let out = '';
  for (let i = 1; i <= LINES; i++) out += `line ${i} ${'x'.repeat(i % 97)}\n`;
  return out + 'the end, unfinished';
}

test('worker SIGKILLed twice mid-step: the step pod’s log on JetStream is byte-exact', async () => {
  const home = process.env.CAUSEWAY_TEST_DEV_HOME;
  if (!home) throw new Error('CAUSEWAY_TEST_DEV_HOME is not set: run through the jest "k8s-node" project');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-k8s-log-crash-'));
  const file = path.join(dir, 'chatty.yml');
  fs.writeFileSync(
    file,
    `
plan:
- task: chatty
  config:
    platform: linux
    run:
      path: bash
      args: [-c, 'for i in $(seq ${LINES}); do printf "line %d %s\\n" $i "$(head -c $(expr $i % 97) /dev/zero | tr "\\0" x)"; sleep 0.2; done; printf "the end, unfinished"']
`,
  );
  const started = await cli(['run', '--detach', file]);
  expect(started.code).toBe(0);
  const buildId = started.stdout.trim().split('\n').pop()!;
  const devFile = path.join(home, 'k8s', 'dev.json');
  // Kill the worker when the step has printed line 30, and again at line 150 (of the new worker's log).
  const marks = [30, 150].map((n) => {
    let reached!: () => void;
    return { line: `line ${n} `, reached: new Promise<void>((r) => (reached = r)), resolve: () => reached() };
  });
  const follow = cli(['watch', buildId], (out) => marks.forEach((m) => out.includes(m.line) && m.resolve()));
  for (const mark of marks) {
    await mark.reached;
    const { worker } = JSON.parse(fs.readFileSync(devFile, 'utf8')) as { worker: { pid: number } };
    process.kill(worker.pid, 'SIGKILL');
    const up = await cli(['dev', 'up', '--runtime', 'kubernetes']);
    expect(up.stdout).toContain('without its worker');
  }
  const watched = await follow;
  expect(watched.code).toBe(0);
  expect(watched.stdout.match(/re-attached to pod cw-chatty-[0-9a-f]+/g)).toHaveLength(2);

  const stack = readState(home)!;
  nc = await connectNats(stack.nats.url, 'k8s-node-log-crash', { home });
  let log = '';
  for await (const r of readBuild(nc, buildId, { follow: false })) {
    if (r.kind === 'log' && r.stepId === 'plan.0' && r.stream === 'stdout') log += Buffer.from(r.data).toString('utf8');
  }
  expect(log).toBe(expected());
});
