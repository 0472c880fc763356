// The containerd runtime's pure parts: image references, chain ids, users, the OCI spec.
import { chainId, imagePull, normalizeReference } from '../../activities/runtime/containerd/image';
import { keeperId, keeperSpec } from '../../activities/runtime/containerd/keeper';
import {
  capabilitiesOf,
  containerSpec,
  DENIED_SYSCALLS,
  GROUP_ANNOTATION,
  mergeEnv,
  resolveUser,
  type OciSpec,
} from '../../activities/runtime/containerd/spec';

describe('image references', () => {
  test.each([
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['concourse/oci-build-task', 'docker.io/concourse/oci-build-task:latest'],
    ['docker.io/alpine', 'docker.io/library/alpine:latest'],
    ['127.0.0.1:5000/causeway/task:abc', '127.0.0.1:5000/causeway/task:abc'],
    ['localhost/x', 'localhost/x:latest'],
    [`busybox@sha256:${'a'.repeat(64)}`, `docker.io/library/busybox@sha256:${'a'.repeat(64)}`],
  ])('%s is %s', (name, ref) => expect(normalizeReference(name)).toBe(ref));

  test('a registry-image source: repository and tag, a digest pins it, credentials go with it', () => {
    expect(imagePull({ type: 'registry-image', source: { repository: 'busybox', tag: '1.36' } }, 'task t')).toEqual({
      ref: 'docker.io/library/busybox:1.36',
      auth: undefined,
    });
    const digest = `sha256:${'b'.repeat(64)}`;
    expect(imagePull({ type: 'registry-image', source: { repository: 'busybox', digest, username: 'u', password: 'p' } }, 't')).toEqual({
      ref: `docker.io/library/busybox@${digest}`,
      auth: { username: 'u', password: 'p' },
    });
    expect(imagePull({ type: 'registry-image', source: { repository: 'busybox' }, version: { digest } }, 't').ref).toBe(
      `docker.io/library/busybox@${digest}`,
    );
  });

  test('what cannot be pulled is said before anything runs', () => {
    expect(() => imagePull({ type: 'git', source: { uri: 'x' } }, 'task t')).toThrow(/type git.*registry-image/);
    expect(() => imagePull({ type: 'registry-image', source: {} }, 'task t')).toThrow(/repository is required/);
    expect(() => imagePull({ type: 'registry-image', source: { repository: 'a', username: 'u' } }, 'task t')).toThrow(
      /both username and password/,
    );
    expect(() => imagePull({ type: 'registry-image', source: { repository: 'a', digest: 'latest' } }, 'task t')).toThrow(/sha256/);
  });
});

test('the chain id of layers is OCI image-spec’s', () => {
  const a = `sha256:${'1'.repeat(64)}`;
  const b = `sha256:${'2'.repeat(64)}`;
  expect(chainId([a])).toBe(a);
  // sha256("sha256:111… sha256:222…")
  expect(chainId([a, b])).toMatch(/^sha256:[0-9a-f]{64}$/);
  expect(chainId([a, b])).not.toBe(chainId([b, a]));
});

describe('users from the image’s passwd and group', () => {
  const passwd =
    'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\nbuild:x:1000:1000::/home/build:/bin/sh\n';
  const group = 'root:x:0:\nnogroup:x:65534:\nbuild:x:1000:\ndocker:x:999:build\n';
  test.each([
    [undefined, { uid: 0, gid: 0, home: '/root' }],
    ['nobody', { uid: 65534, gid: 65534, home: '/nonexistent' }],
    ['build', { uid: 1000, gid: 1000, additionalGids: [999] }],
    ['1000:65534', { uid: 1000, gid: 65534 }],
    ['4242', { uid: 4242, gid: 4242, home: '/' }],
    ['build:nogroup', { uid: 1000, gid: 65534 }],
  ])('%s', (user, expected) => expect(resolveUser(user, passwd, group)).toMatchObject(expected));
  test('a name the image does not know is an error naming it', () => {
    expect(() => resolveUser('postgres', passwd, group)).toThrow(/user postgres is not in the image's \/etc\/passwd/);
    expect(() => resolveUser('build:wheel', passwd, group)).toThrow(/group wheel/);
  });
});

test('the image’s env, with the step’s on top', () => {
  expect(mergeEnv(['PATH=/bin', 'A=1', 'B=x=y'], { A: '2', C: '3' })).toEqual({ PATH: '/bin', A: '2', B: 'x=y', C: '3' });
});

test('capabilities named from a CapEff mask', () => {
  expect(capabilitiesOf('Name:\tnode\nCapEff:\t0000000000000003\n')).toEqual(['CAP_CHOWN', 'CAP_DAC_OVERRIDE']);
  expect(capabilitiesOf('CapEff:\t000001ffffffffff')).toHaveLength(41);
});

describe('the container spec', () => {
  const base: OciSpec = {
    process: { user: { uid: 0, gid: 0 }, cwd: '/', capabilities: { bounding: ['CAP_CHOWN'] }, noNewPrivileges: true },
    root: { path: 'rootfs' },
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'ro'] },
    ],
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'mount' }],
      maskedPaths: ['/proc/kcore'],
      readonlyPaths: ['/proc/sys'],
    },
  };
  const input = {
    rootfs: '/home/b/rootfs',
    hostname: 'cw-1',
    args: ['sh', '-c', 'true'],
    env: { PATH: '/bin', A: 'b' },
    cwd: '/tmp/build/1',
    user: { uid: 1000, gid: 1000 },
    mounts: [{ source: '/home/b/work', destination: '/tmp/build/1' }],
    privileged: false,
    hostCapabilities: ['CAP_CHOWN', 'CAP_SYS_ADMIN'],
    cgroupsPath: '/causeway-ctr/cw-1/task',
  };

  test('unprivileged: the default capabilities, no_new_privs, a seccomp profile refusing mount, masks kept', () => {
    const s = containerSpec(base, { ...input, cpuShares: 512 });
    expect(s.root).toEqual({ path: '/home/b/rootfs', readonly: false });
    expect(s.process).toMatchObject({
      args: ['sh', '-c', 'true'],
      env: ['PATH=/bin', 'A=b'],
      cwd: '/tmp/build/1',
      user: { uid: 1000, gid: 1000 },
    });
    expect(s.process.capabilities).toEqual({ bounding: ['CAP_CHOWN'] });
    expect(s.process.noNewPrivileges).toBe(true);
    expect(s.mounts).toContainEqual({ destination: '/tmp/build/1', type: 'bind', source: '/home/b/work', options: ['rbind', 'rw'] });
    expect(s.mounts.find((m) => m.destination === '/dev')?.type).toBe('tmpfs');
    expect(s.linux.seccomp).toMatchObject({
      defaultAction: 'SCMP_ACT_ALLOW',
      syscalls: [{ names: DENIED_SYSCALLS, action: 'SCMP_ACT_ERRNO' }],
    });
    expect(DENIED_SYSCALLS).toContain('mount');
    expect(s.linux.maskedPaths).toEqual(['/proc/kcore']);
    expect(s.linux.resources?.cpu).toEqual({ shares: 512 });
    expect(s.linux.cgroupsPath).toBe('/causeway-ctr/cw-1/task');
    expect(s.linux.namespaces).toContainEqual({ type: 'network' });
    // The base is not changed.
    expect(base.root.path).toBe('rootfs');
  });

  test('privileged: the worker’s capabilities, the host’s devices, writable /sys, no seccomp or masks', () => {
    const s = containerSpec(base, { ...input, privileged: true });
    expect(s.process.capabilities?.effective).toEqual(['CAP_CHOWN', 'CAP_SYS_ADMIN']);
    expect(s.process.noNewPrivileges).toBe(false);
    expect(s.linux.resources?.devices).toEqual([{ allow: true, access: 'rwm' }]);
    expect(s.mounts.find((m) => m.destination === '/dev')).toMatchObject({ type: 'bind', source: '/dev' });
    expect(s.mounts.find((m) => m.destination === '/sys')?.options).toEqual(['nosuid']);
    expect(s.linux.seccomp).toBeUndefined();
    expect(s.linux.maskedPaths).toBeUndefined();
  });

  test('a step with services joins the build’s network namespace', () => {
    const s = containerSpec(base, { ...input, netns: '/run/netns/cw-abc' });
    expect(s.linux.namespaces).toContainEqual({ type: 'network', path: '/run/netns/cw-abc' });
  });

  test('a task joins its build’s shim group; the build’s keeper is in it and runs nothing', () => {
    expect(containerSpec(base, input).annotations).toBeUndefined();
    const s = containerSpec(base, { ...input, shimGroup: keeperId('b-1') });
    expect(s.annotations).toEqual({ [GROUP_ANNOTATION]: keeperId('b-1') });
    const k = keeperSpec(base, 'b-1', '/home/containerd-keeper/rootfs');
    expect(k.annotations).toEqual({ [GROUP_ANNOTATION]: keeperId('b-1') });
    expect(k.root).toEqual({ path: '/home/containerd-keeper/rootfs', readonly: true });
    expect(k.process.args).toEqual(['/pause']);
    expect(k.linux.cgroupsPath).toBe(`/causeway-ctr/${keeperId('b-1')}/task`);
    expect(keeperId('b-1')).not.toBe(keeperId('b-2'));
    expect(keeperId('b-1').length).toBeLessThanOrEqual(76);
  });

  test("a resource type's container has no network namespace of its own (the worker's), unless it joins the build's", () => {
    const s = containerSpec(base, { ...input, hostNetwork: true });
    expect(s.linux.namespaces).toEqual([{ type: 'pid' }, { type: 'mount' }]);
    const joined = containerSpec(base, { ...input, hostNetwork: true, netns: '/run/netns/cw-abc' });
    expect(joined.linux.namespaces).toContainEqual({ type: 'network', path: '/run/netns/cw-abc' });
  });
});
