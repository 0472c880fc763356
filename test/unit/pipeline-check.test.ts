// A pipeline's check (activities/pipeline.ts) past its check_timeout: it fails with a message
// that says so, and nothing it started keeps running; one its uid cannot execute says how to
// open it. Real processes, no server.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipelineActivities } from '../../activities/pipeline';
import type { ResourceRef } from '../../schemas/compiled';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-check-timeout-'));
  // A root worker runs the check under a uid of its own, which writes `child` here.
  fs.chmodSync(dir, 0o777);
  // A check that hangs on a child of its own (as git would), unless `fast` exists.
  fs.writeFileSync(
    path.join(dir, 'check'),
    `#!/bin/sh\nif [ -e ${dir}/fast ]; then echo '[{"v":"1"}]'; exit 0; fi\necho "fetching" >&2\nsleep 30 &\necho $! > ${dir}/child\nwait\n`,
    { mode: 0o755 },
  );
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const resource = (): ResourceRef => ({ name: 'slow', type: { kind: 'host', name: 'slowtype', dir }, source: {} });
/** Running or sleeping; a killed process nobody has reaped yet is a zombie (Z), not alive. */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

test('a check past check_timeout fails saying so, its process group killed; the next check runs as usual', async () => {
  const acts = pipelineActivities({ home: path.join(dir, 'home') });
  const err = await acts.checkResource({ pipeline: 'p', resource: resource(), from: null, timeoutMs: 500 }).catch((e: Error) => e);
  expect(err).toBeInstanceOf(Error);
  expect((err as Error & { type?: string }).type).toBe('CheckFailed');
  expect((err as Error).message).toBe(
    "resource slow: check timed out after 500ms (check_timeout; Concourse's default is 1h); it runs again at the next check_every. fetching",
  );
  const child = Number(fs.readFileSync(path.join(dir, 'child'), 'utf8'));
  await new Promise((r) => setTimeout(r, 200));
  expect(alive(child)).toBe(false);

  fs.writeFileSync(path.join(dir, 'fast'), '');
  expect(await acts.checkResource({ pipeline: 'p', resource: resource(), from: null, timeoutMs: 5000 })).toEqual([{ v: '1' }]);
});

test("a root worker's check that its uid cannot execute says what to change", async () => {
  if (process.getuid?.() !== 0) return;
  const closed = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-check-closed-'));
  try {
    // mkdtemp's 0700: the check's uid cannot reach the script inside.
    const type = path.join(closed, 't');
    fs.mkdirSync(type, { mode: 0o755 });
    fs.writeFileSync(path.join(type, 'check'), '#!/bin/sh\necho "[]"\n', { mode: 0o755 });
    const ref: ResourceRef = { name: 'closed', type: { kind: 'host', name: 't', dir: type }, source: {} };
    const err = await pipelineActivities({ home: path.join(dir, 'home') })
      .checkResource({ pipeline: 'p', resource: ref, from: null, timeoutMs: 5000 })
      .catch((e: Error) => e);
    expect((err as Error).message).toMatch(/^resource closed: check exited 126: .*Permission denied/);
    expect((err as Error).message).toContain(
      `checks run as an unprivileged uid: ${type}/check and every directory above it must be readable and searchable by others (chmod o+rx)`,
    );
  } finally {
    fs.rmSync(closed, { recursive: true, force: true });
  }
});
