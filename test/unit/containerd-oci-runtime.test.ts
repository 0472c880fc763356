import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chooseOciRuntime, crunCgroupProblem } from '../../activities/runtime/containerd/oci-runtime';

const roots: string[] = [];
afterAll(() => roots.forEach((r) => fs.rmSync(r, { recursive: true, force: true })));

/** A /sys/fs/cgroup stand-in: `unified` is cgroup2's controllers in a hybrid layout, absent otherwise. */
function cgroupRoot(unified?: string): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cw-cgroup-'));
  roots.push(root);
  if (unified !== undefined) {
    fs.mkdirSync(path.join(root, 'unified'));
    fs.writeFileSync(path.join(root, 'unified', 'cgroup.controllers'), unified);
  }
  return root;
}

describe('crunCgroupProblem', () => {
  it('says which controllers a hybrid layout leaves in cgroup2, and how to move them', () => {
    const problem = crunCgroupProblem(cgroupRoot('hugetlb\n'));
    expect(problem).toMatch(/cgroup2 at .*\/unified holds controllers \(hugetlb\)/);
    expect(problem).toMatch(/scripts\/cgroup-hierarchies\.sh/);
  });

  it('finds none in a hybrid layout without controllers in cgroup2, or without a hybrid layout', () => {
    expect(crunCgroupProblem(cgroupRoot(''))).toBeUndefined();
    expect(crunCgroupProblem(cgroupRoot())).toBeUndefined();
  });
});

describe('chooseOciRuntime', () => {
  const host = (crun: string | undefined, problem?: string) => ({ crun: () => crun, cgroups: () => problem });

  it('auto takes crun where it is installed and can run', () => {
    expect(chooseOciRuntime('auto', host('/usr/bin/crun'))).toMatchObject({ name: 'crun', binary: '/usr/bin/crun' });
  });

  it('auto falls back to runc, the shim default, saying why', () => {
    const missing = chooseOciRuntime('auto', host(undefined));
    expect(missing).toEqual({ name: 'runc', why: expect.any(String) });
    expect(missing.why).toMatch(/crun is not installed/);
    const refused = chooseOciRuntime('auto', host('/usr/bin/crun', 'crun refuses this host'));
    expect(refused).toEqual({ name: 'runc', why: expect.any(String) });
    expect(refused.why).toMatch(/crun refuses this host/);
  });

  it('runc asked for is runc even where crun could run', () => {
    expect(chooseOciRuntime('runc', host('/usr/bin/crun'))).toEqual({ name: 'runc', why: expect.any(String) });
  });

  it('crun asked for where it cannot run is an error that says why', () => {
    expect(() => chooseOciRuntime('crun', host(undefined))).toThrow(/--oci-runtime crun: crun is not installed/);
    expect(() => chooseOciRuntime('crun', host('/usr/bin/crun', 'crun refuses this host'))).toThrow(/crun refuses this host/);
  });
});
