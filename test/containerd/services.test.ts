// Services as containers from their image, each in a network namespace of its own on the
// build's bridge: three on one port in an across, reached by address and by name; on the tasks'
// path (the build's shim group, roots prepared ahead), stopped by SIGTERM to the container.
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { collectServiceLogs } from '../../common/build-log';
import type { Harness } from '../workflows/harness';
import { keeperId } from '../../activities/runtime/containerd/keeper';
import { BUSYBOX, ctr, mountsOf, shimsOf, startContainerdHarness, watchShims } from './harness';

let h: Harness;
beforeAll(async () => {
  h = await startContainerdHarness();
});
afterAll(async () => {
  await h.stop();
});

// These services' pid 1 (a shell, httpd) has no SIGTERM handler, so the kernel ignores the stop's
// SIGTERM, as for any container's init: a short grace_period keeps their stop short. The stop
// test below traps it.
const GRACE = '1s';

/** An HTTP GET with busybox nc (its wget needs name services a static busybox lacks). */
const get = (host: string) => `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc ${host} 8080 | tail -n 1 | sed "s|^|${host} -> |"`;

test('across of three values, each with a busybox httpd on port 8080 in its own container: each iteration reads its own page', async () => {
  const web = {
    name: 'web',
    grace_period: GRACE,
    config: {
      image_resource: BUSYBOX,
      run: { path: 'sh', args: ['-c', 'mkdir -p www && echo page-((.:v)) > www/index.html && exec httpd -f -p 8080 -h www'] },
      ports: [8080],
    },
  };
  const step = {
    task: 'read',
    across: [{ var: 'v', values: ['a', 'b', 'c'], max_in_flight: 'all' }],
    services: [web],
    config: {
      image_resource: BUSYBOX,
      run: { path: 'sh', args: ['-c', `${get('$WEB_SERVICE_HOST')}; ${get('web')}; cat /etc/os-release`] },
    },
  };
  const r = await h.run(JSON.stringify({ plan: [step] }));
  expect([r.status, r.message]).toEqual(['succeeded', undefined]);
  const hosts = new Set<string>();
  for (const [i, v] of ['a', 'b', 'c'].entries()) {
    const out = r.logs.get(`plan.0.across.${i}`) ?? '';
    const m = /(198\.18\.\d+\.\d+) -> page-(\w)/.exec(out);
    hosts.add(m![1]);
    expect(out).toContain(`web -> page-${v}`);
    expect(out).toContain('Causeway busybox');
  }
  expect(hosts.size).toBe(3);
  expect(ctr(['containers', 'ls', '-q']).trim()).toBe('');
  expect(mountsOf(h.home, r.buildId)).toEqual([]);
});

test('a startup probe runs inside the service’s container', async () => {
  const step = {
    task: 'probed',
    services: [
      {
        name: 'svc',
        grace_period: GRACE,
        config: {
          image_resource: BUSYBOX,
          run: { path: 'sh', args: ['-c', 'sleep 1; touch /tmp/ready; exec sleep 300'] },
          // Passes only where /tmp/ready exists: inside the container, not on the host.
          startup_probe: { run: { path: 'test', args: ['-e', '/tmp/ready'] }, period_seconds: 0.2, failure_threshold: 100 },
        },
      },
    ],
    config: { image_resource: BUSYBOX, run: { path: 'echo', args: ['after the probe'] } },
  };
  const r = await h.run(JSON.stringify({ plan: [step] }));
  expect([r.status, r.message]).toEqual(['succeeded', undefined]);
  expect(r.logs.get('plan.0')).toContain('after the probe');
  expect(ctr(['containers', 'ls', '-q']).trim()).toBe('');
});

test('a service’s privileged and container_limits apply to its container, as a task’s do', async () => {
  // What a client reads: whether a mount is allowed in the service's container.
  const report = [
    'mkdir -p www /tmp/m',
    'if mount -t tmpfs t /tmp/m 2>/dev/null; then echo mounted; else echo refused; fi > www/index.html',
    'exec httpd -f -p 8080 -h www',
  ].join('; ');
  const service = (name: string, extra: Record<string, unknown>) => ({
    name,
    grace_period: GRACE,
    ...extra,
    config: { image_resource: BUSYBOX, run: { path: 'sh', args: ['-c', report] }, ports: [8080] },
  });
  const step = {
    task: 'read',
    services: [service('priv', { privileged: true, container_limits: { memory: 64 * 1024 * 1024 } }), service('plain', {})],
    config: { image_resource: BUSYBOX, run: { path: 'sh', args: ['-c', `${get('priv')}; ${get('plain')}; sleep 1`] } },
  };
  // The container cannot see its limit (it is on its cgroup's parent): the host can, while it runs.
  const limits = new Set<number>();
  const watch = setInterval(() => {
    const root = '/sys/fs/cgroup/memory/causeway-ctr';
    for (const id of fs.existsSync(root) ? fs.readdirSync(root).filter((d) => d.startsWith('cw-')) : []) {
      let limit = NaN;
      try {
        limit = Number(fs.readFileSync(path.join(root, id, 'memory.limit_in_bytes'), 'utf8'));
      } catch {
        // gone between the listing and the read
      }
      // "No limit" is close to 2^63.
      if (limit < 2 ** 40) limits.add(limit);
    }
  }, 50);
  const r = await h.run(JSON.stringify({ plan: [step] })).finally(() => clearInterval(watch));
  expect([r.status, r.message]).toEqual(['succeeded', undefined]);
  const out = r.logs.get('plan.0') ?? '';
  expect(out).toContain('priv -> mounted');
  expect(out).toContain('plain -> refused');
  expect(limits).toEqual(new Set([64 * 1024 * 1024]));
  expect(ctr(['containers', 'ls', '-q']).trim()).toBe('');
  expect(mountsOf(h.home, r.buildId)).toEqual([]);
});

test('a service’s credential refs are resolved by its activity into its container and redacted from its log', async () => {
  const secret = `s3cret-${randomUUID()}`;
  const step = {
    task: 'use',
    services: [
      {
        name: 'svc',
        grace_period: GRACE,
        params: { S: '((vs:password))' },
        config: {
          image_resource: BUSYBOX,
          run: { path: 'sh', args: ['-c', 'echo "service has $S"; printf "%s" "${S%%-*}"; sleep 0.3; echo "-${S#*-}"; exec sleep 300'] },
        },
      },
    ],
    config: { image_resource: BUSYBOX, run: { path: 'sleep', args: ['1'] } },
  };
  const plan = { var_sources: [{ name: 'vs', type: 'dummy', config: { vars: { password: secret } } }], plan: [step] };
  const r = await h.run(JSON.stringify(plan));
  expect([r.status, r.message]).toEqual(['succeeded', undefined]);
  const log = (await collectServiceLogs(h.nc, r.buildId)).get('plan.0/svc') ?? '';
  expect(log).toContain('service has ((redacted))\n');
  expect(log).toMatch(/\n\(\(redacted\)\)\n/);
  expect(log).not.toContain(secret.slice(7, 20));
  expect(ctr(['containers', 'ls', '-q']).trim()).toBe('');
});

test('a service’s input is a copy-on-write view of its producer’s output: its writes are not the next step’s', async () => {
  const serve = [
    'mkdir -p www',
    'echo "$(grep " $PWD/data " /proc/self/mountinfo | grep -o overlay) $(cat data/file)" > www/index.html',
    'echo changed > data/file',
    'exec httpd -f -p 8080 -h www',
  ].join('; ');
  const sh = (script: string) => ({ path: 'sh', args: ['-c', script] });
  const plan = [
    { task: 'make', config: { image_resource: BUSYBOX, outputs: [{ name: 'data' }], run: sh('echo made > data/file') } },
    {
      task: 'read',
      services: [
        {
          name: 'svc',
          grace_period: GRACE,
          config: { image_resource: BUSYBOX, inputs: [{ name: 'data' }], run: sh(serve), ports: [8080] },
        },
      ],
      config: { image_resource: BUSYBOX, run: sh(get('svc')) },
    },
    { task: 'check', config: { image_resource: BUSYBOX, inputs: [{ name: 'data' }], run: sh('cat data/file') } },
  ];
  const r = await h.run(JSON.stringify({ plan }));
  expect([r.status, r.message]).toEqual(['succeeded', undefined]);
  expect(r.logs.get('plan.1')).toContain('svc -> overlay made');
  expect(r.logs.get('plan.2')).toBe('made\n');
  expect(ctr(['containers', 'ls', '-q']).trim()).toBe('');
  expect(mountsOf(h.home, r.buildId)).toEqual([]);
});

test('a service’s container runs in the build’s shim group (its keeper’s) and takes a root prepared ahead; its stop is SIGTERM to the container', async () => {
  const stop = { done: false };
  const shims = watchShims(stop);
  const plan = [
    { task: 'first', config: { image_resource: BUSYBOX, run: { path: 'true' } } },
    {
      task: 'with-service',
      services: [
        {
          name: 'svc',
          config: {
            image_resource: BUSYBOX,
            // The trap runs only if the stop's SIGTERM reaches the container's pid 1.
            run: { path: 'sh', args: ['-c', "trap 'echo got TERM; exit 0' TERM; echo up; while :; do sleep 0.1; done"] },
          },
        },
      ],
      config: { image_resource: BUSYBOX, run: { path: 'true' } },
    },
  ];
  const r = await h.run(JSON.stringify({ plan })).finally(() => {
    stop.done = true;
  });
  expect([r.status, r.message]).toEqual(['succeeded', undefined]);
  // One shim for the build's tasks and its service: the keeper's.
  expect(shimsOf(await shims, keeperId(r.buildId))).toEqual([keeperId(r.buildId)]);
  const meta = fs
    .readdirSync(path.join(h.home, 'builds', r.buildId), { recursive: true, encoding: 'utf8' })
    .find((f) => f.includes('/services/') && path.basename(f) === 'container.json');
  const { rootfs } = JSON.parse(fs.readFileSync(path.join(h.home, 'builds', r.buildId, meta!), 'utf8')) as { rootfs: { target: string } };
  expect(rootfs.target).toContain('/spare-roots/');
  const log = (await collectServiceLogs(h.nc, r.buildId)).get('plan.1/svc') ?? '';
  expect(log).toMatch(/service svc started \(container cw-[0-9a-f]+\)/);
  // Stopped within its grace period: its trap ran, no SIGKILL.
  expect(log).toContain('stopping service svc: SIGTERM');
  expect(log).toContain('service svc stopped\n');
  expect(log).not.toContain('SIGKILL)');
  expect(log).toContain('got TERM\n');
  expect(ctr(['containers', 'ls', '-q']).trim()).toBe('');
  expect(mountsOf(h.home, r.buildId)).toEqual([]);
});
