// docs/client.md's examples, run as written against the test run's Temporal: a build started
// by a TypeScript program, by the Temporal CLI, by the Python SDK and by the Go SDK, from `causeway compile`.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { AddressInfo } from 'node:net';
import type http from 'node:http';
import { AesGcmPayloadCodec, loadCodecKeys } from '../../common/codec';
import { codecServer } from '../../common/codec-server';
import { startHarness, type Harness } from '../workflows/harness';

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, '../..');
/** Made by .ci/run: a venv with the pinned temporalio. */
const PYTHON = path.join(os.homedir(), '.cache', 'causeway', 'python-clients', 'bin', 'python');
/** Built by .ci/run from examples/clients/go. */
const GO_CLIENT = path.join(os.homedir(), '.cache', 'causeway', 'go-clients', 'start-build');
let h: Harness;
let dir: string;
let env: NodeJS.ProcessEnv;
let codec: http.Server;

beforeAll(async () => {
  h = await startHarness();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-clients-'));
  // Payloads are encrypted (docs/security.md): the clients reach the workers' keys through a codec server.
  codec = codecServer({ codec: new AesGcmPayloadCodec(loadCodecKeys({ home: h.home })!), token: 'clients-test', origins: [] });
  await new Promise<void>((r) => codec.listen(0, '127.0.0.1', r));
  const codecEnv = {
    CAUSEWAY_CODEC_ENDPOINT: `http://127.0.0.1:${(codec.address() as AddressInfo).port}`,
    CAUSEWAY_CODEC_TOKEN: 'clients-test',
  };
  env = { ...process.env, CAUSEWAY_TASK_QUEUE: h.taskQueue, ...codecEnv };
});
afterAll(async () => {
  codec.close();
  await h.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function compiled(name: string, script: string): Promise<{ plan: string; input: string }> {
  const plan = path.join(dir, `${name}.yml`);
  fs.writeFileSync(
    plan,
    `name: ${name}\nplan:\n- task: step\n  config:\n    platform: linux\n    run: {path: sh, args: [-c, '${script}']}\n`,
  );
  const { stdout } = await run(path.join(ROOT, 'bin', 'causeway'), ['compile', plan], { env });
  const input = path.join(dir, `${name}.json`);
  fs.writeFileSync(input, stdout);
  return { plan, input };
}

async function exitOf(cmd: string, args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await run(cmd, args, { env, cwd: ROOT });
    return { code: 0, stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: `${e.stdout}${e.stderr}` };
  }
}

test('TypeScript client', async () => {
  const ok = await compiled('ts-ok', 'true');
  expect(await exitOf(process.execPath, ['dist/examples/clients/start-build.js', ok.input])).toMatchObject({
    code: 0,
    stdout: expect.stringContaining('succeeded'),
  });
  const bad = await compiled('ts-bad', 'exit 3');
  expect(await exitOf(process.execPath, ['dist/examples/clients/start-build.js', bad.input])).toMatchObject({
    code: 1,
    stdout: expect.stringContaining('BuildFailed: step (exit 3) failed'),
  });
});

test('Temporal CLI (temporal workflow start --input-file)', async () => {
  const ok = await compiled('cli-ok', 'true');
  // `temporal` on PATH as scripts/provision.sh puts it there.
  const r = await exitOf('bash', ['-c', 'eval "$(bash scripts/provision.sh)" && exec bash examples/clients/temporal-cli.sh "$0"', ok.plan]);
  expect(r).toMatchObject({ code: 0, stdout: expect.stringMatching(/"status": ?"succeeded"/) });
});

test('Python SDK (temporalio)', async () => {
  if (!fs.existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: .ci/run makes it (python3 -m venv + pip install temporalio)`);
  const ok = await compiled('py-ok', 'true');
  expect(await exitOf(PYTHON, ['examples/clients/start_build.py', ok.input])).toMatchObject({
    code: 0,
    stdout: expect.stringContaining('succeeded'),
  });
  const bad = await compiled('py-bad', 'exit 3');
  expect(await exitOf(PYTHON, ['examples/clients/start_build.py', bad.input])).toMatchObject({
    code: 1,
    stdout: expect.stringContaining('BuildFailed: step (exit 3) failed'),
  });
});

test('Go SDK (go.temporal.io/sdk)', async () => {
  if (!fs.existsSync(GO_CLIENT)) throw new Error(`${GO_CLIENT} is missing: .ci/run builds it (go build in examples/clients/go)`);
  const ok = await compiled('go-ok', 'true');
  expect(await exitOf(GO_CLIENT, [ok.input])).toMatchObject({ code: 0, stdout: expect.stringContaining('succeeded: succeeded') });
  const bad = await compiled('go-bad', 'exit 3');
  // The failure's message is encrypted in its encoded attributes: the SDK decodes it through the codec server.
  expect(await exitOf(GO_CLIENT, [bad.input])).toMatchObject({
    code: 1,
    stdout: expect.stringContaining('BuildFailed: step (exit 3) failed'),
  });
});
