// `causeway validate-pipeline`, as `fly validate-pipeline`: offline, every problem with its
// file:line, and `-o` printing the pipeline with the given vars filled in.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { requireBuiltCli } from './cli-runner';

const BIN = path.resolve(__dirname, '../../bin/causeway');
const EXAMPLE = path.resolve(__dirname, '../../examples/pipeline.yml');
let dir: string;

beforeAll(() => {
  requireBuiltCli();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-validate-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function validate(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  // No stack: the command must not need one.
  const env = { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1', NATS_URL: 'nats://127.0.0.1:1', CAUSEWAY_HOME: dir };
  try {
    const { stdout, stderr } = await promisify(execFile)(BIN, ['validate-pipeline', ...args], { env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('a valid pipeline looks good, with vars left to the credential manager', async () => {
  const r = await validate('-c', EXAMPLE);
  // On stdout, as fly prints it: scripts grep for it.
  expect(r).toMatchObject({ code: 0, stdout: 'looks good: 1 job, 2 resources\n' });
});

test("Concourse's warnings are shown with their file:line, and --strict fails on them; fly's --enable-across-step is taken", async () => {
  const file = path.join(dir, 'warned.yml');
  fs.writeFileSync(file, 'jobs:\n- name: Unit\n  plan:\n  - task: t\n    config: {platform: linux, run: {path: "true"}}\n');
  const r = await validate('-c', file, '--enable-across-step');
  expect(r).toMatchObject({ code: 0, stdout: 'looks good: 1 job, 0 resources\n' });
  expect(r.stderr).toContain(`${file}:2:9: jobs[0].name: 'Unit' is not a valid identifier: must start with a lowercase letter or a number`);
  const strict = await validate('-c', file, '--strict');
  expect(strict).toMatchObject({ code: 2, stdout: '' });
  expect(strict.stderr).toContain('configuration invalid: 1 warning with --strict');
});

test('-o prints the pipeline with the given vars filled in and the others left as refs', async () => {
  const r = await validate('-c', EXAMPLE, '-v', 'uri=file:///src', '-o');
  expect(r.code).toBe(0);
  expect(r.stdout).toContain('uri: file:///src');
  expect(r.stdout).toContain('branch: ((branch))');
});

test('an invalid pipeline lists every problem with its file:line and exits 2', async () => {
  const file = path.join(dir, 'bad.yml');
  fs.writeFileSync(file, 'jobs:\n- name: j\n  plan:\n  - get: nowhere\n  - tsk: t\n');
  const r = await validate('-c', file);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(`${file}:4:10: jobs[0].plan[0].get: no resource \`nowhere\` in this file's \`resources:\``);
  expect(r.stderr).toMatch(/bad\.yml:5:5: jobs\[0\]\.plan\[1\]: .*did you mean `task`/);
});
