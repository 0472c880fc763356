// A file a step reads from an artifact (load_var, a task's or service's file:, set_pipeline) is
// read by the step layer for every runtime, no further than a plan file may be: a step can write
// gigabytes into its output, which must not fill the worker's memory.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { StepErrored } from '../../activities/errors';
import { loadVar } from '../../activities/load-var';
import { readDirArtifactFile } from '../../activities/runtime/local/host-task';
import type { LoadVarStep } from '../../schemas/compiled';
import { MAX_YAML_BYTES } from '../../schemas/errors';

const step = (file: string): LoadVarStep => ({ id: 'plan.0', kind: 'load_var', var: 'version', file, reveal: false });

describe('load_var reads at most 4 MB of its file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-load-var-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const artifacts = { out: { kind: 'dir' as const, worker: 'w', path: dir } };
  const local = { readArtifactFile: readDirArtifactFile('local') };

  test('a file within the limit is read and parsed', async () => {
    fs.writeFileSync(path.join(dir, 'version.json'), '{"n": 1}');
    await expect(loadVar(local, { buildId: 'b', step: step('out/version.json'), artifacts })).resolves.toEqual({ n: 1 });
  });

  test('a larger file is refused naming the step, the file and the limit', async () => {
    fs.writeFileSync(path.join(dir, 'big'), Buffer.alloc(MAX_YAML_BYTES + 1, 'x'));
    const read = loadVar(local, { buildId: 'b', step: step('out/big'), artifacts });
    await expect(read).rejects.toThrow(StepErrored);
    await expect(read).rejects.toThrow(
      'load_var version: out/big is larger than 4,194,304 bytes (4 MB), the most a file a step reads from an artifact may be (as a plan file): is it the file you meant?',
    );
  });

  test('a stream that never ends (a pod streaming a huge file) is stopped at the limit', async () => {
    let sent = 0;
    const endless = new Readable({
      read() {
        sent += 64 * 1024;
        this.push(Buffer.alloc(64 * 1024));
      },
    });
    const runtime = { readArtifactFile: async () => endless };
    await expect(loadVar(runtime, { buildId: 'b', step: step('out/zero'), artifacts })).rejects.toThrow(
      /^load_var version: out\/zero is larger than 4,194,304 bytes/,
    );
    expect(endless.destroyed).toBe(true);
    expect(sent).toBeLessThan(2 * MAX_YAML_BYTES);
  });

  test('a FIFO a step made is refused instead of blocking the worker', async () => {
    execFileSync('mkfifo', [path.join(dir, 'fifo')]);
    await expect(loadVar(local, { buildId: 'b', step: step('out/fifo'), artifacts })).rejects.toThrow(
      'load_var version: cannot read out/fifo: fifo is not a regular file',
    );
  });
});
