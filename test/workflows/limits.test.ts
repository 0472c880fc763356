// container_limits.memory on the local runtime (cgroup when the host allows, else ulimit -v).
import fs from 'node:fs';
import { killMatching, pidsMatching, sh, startHarness, waitFor, type BuildRun, type Harness } from './harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
const markers: string[] = [];
afterAll(async () => {
  for (const m of markers) killMatching(m);
  await h.stop();
});

/** Memory cgroups the local runtime made for a build (v1 or v2 layout), still present. */
function cgroupsOf(buildId: string): string[] {
  return ['/sys/fs/cgroup/memory/causeway', '/sys/fs/cgroup/causeway'].flatMap((root) => {
    try {
      return fs.readdirSync(root).filter((n) => n.startsWith(buildId));
    } catch {
      return [];
    }
  });
}

const MB = 1024 * 1024;
const stepOf = (r: BuildRun, id: string) => r.summary?.steps.find((s) => s.id === id);
const alloc = (mb: number) => `python3 -c "b = bytearray(${mb}*1024*1024); print('allocated')"`;

describe('container_limits.memory', () => {
  test('a task allocating more than the limit ends non-zero; the build fails', async () => {
    const r = await h.run(`plan:\n- ${sh('hog', alloc(300), {}, { container_limits: { memory: 64 * MB } })}`);
    expect(r.status).toBe('failed');
    expect(stepOf(r, 'plan.0')?.exitCode).not.toBe(0);
    expect(r.logs.get('plan.0') ?? '').not.toContain('allocated');
  });

  test('a task within the limit succeeds', async () => {
    const r = await h.run(`plan:\n- ${sh('small', alloc(8), {}, { container_limits: { memory: 256 * MB } })}`);
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.0')).toContain('allocated');
  });

  test('the step’s container_limits override the config’s', async () => {
    const r = await h.run(
      `plan:\n- ${sh('hog', alloc(300), { container_limits: { memory: 64 * MB } }, { container_limits: { memory: 2048 * MB } })}`,
    );
    expect(r.status).toBe('failed');
  });

  test('the limit is per step: a later step without one can allocate', async () => {
    const r = await h.run(`plan:\n- ${sh('limited', 'true', {}, { container_limits: { memory: 64 * MB } })}\n- ${sh('free', alloc(300))}`);
    expect(r.status).toBe('succeeded');
  });

  test('the step’s memory cgroup is removed when it ends: exit, timeout and abort alike', async () => {
    const limits = { container_limits: { memory: 64 * MB } };
    const done = await h.run(`plan:\n- ${sh('t', 'true', {}, limits)}`);
    expect(done.status).toBe('succeeded');
    expect(cgroupsOf(done.buildId)).toEqual([]);

    const m = `30.${Math.floor(Math.random() * 1e9)}`;
    markers.push(`sleep ${m}`);
    const timedOut = await h.run(`plan:\n- ${sh('t', `sleep ${m}`, { timeout: '1s' }, limits)}`);
    expect(timedOut.status).toBe('failed');
    expect(cgroupsOf(timedOut.buildId)).toEqual([]);

    const handle = await h.start(`plan:\n- ${sh('t', `sleep ${m}1`, {}, limits)}`);
    await waitFor('the step process', () => pidsMatching(`sleep ${m}1`).length > 0);
    await handle.cancel();
    const aborted = await h.finish(handle);
    expect(aborted.status).toBe('aborted');
    expect(cgroupsOf(aborted.buildId)).toEqual([]);
  });
});
