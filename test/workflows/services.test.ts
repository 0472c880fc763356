// Services against real servers run by the local runtime: PostgreSQL from Debian's packages
// (pg_isready as startup probe) and nats-server (TCP readiness), each in a network namespace of
// its own. After every test, no process carrying the test's marker may remain. How services are
// wired to steps (scopes, every ((.svc)) form, unresolved refs) is services-wiring.test.ts's, on
// the fake runtime.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { collectServiceLogs } from '../../common/build-log';
import type { BuildSummary } from '../../schemas/build';
import { killMatching, marker, pidsMatching, startHarness, waitFor, type Harness } from './harness';

let h: Harness;
const markers: string[] = [];
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  markers.forEach(killMatching);
  await h.stop();
});

function found(cmd: string): string {
  return execFileSync('sh', ['-c', cmd], { encoding: 'utf8' }).trim();
}
const PG_BIN = found('ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1');
// A copy any uid may run: a root worker runs each build under a uid of its own, which cannot
// reach a binary cached in root's 0700 home from a shell (only as run.path, exec'd before the drop).
const NATS = reachable(found('command -v nats-server || ls ~/.cache/causeway/nats-server-*/bin/nats-server | tail -n 1'));

function reachable(bin: string): string {
  const copy = path.join(os.tmpdir(), 'causeway-test-bin', `${path.basename(path.dirname(path.dirname(bin)))}-${path.basename(bin)}`);
  fs.mkdirSync(path.dirname(copy), { recursive: true, mode: 0o755 });
  if (!fs.existsSync(copy)) {
    fs.copyFileSync(bin, `${copy}.${process.pid}`);
    fs.chmodSync(`${copy}.${process.pid}`, 0o755);
    fs.renameSync(`${copy}.${process.pid}`, copy);
  }
  return copy;
}

function mark(tag: string): string {
  const m = marker(tag);
  markers.push(m);
  return m;
}

/** A PostgreSQL service: initdb into its own directory, listening on its service address, trusting its steps (they connect from their build's bridge, not from loopback). */
function postgres(name: string, m: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const up = name.toUpperCase();
  return {
    name,
    config: {
      run: {
        user: 'postgres',
        path: 'sh',
        args: [
          '-c',
          `initdb -D "$PWD/data" -A trust -U postgres >/dev/null && echo "host all all all trust" >> "$PWD/data/pg_hba.conf" && exec postgres -D "$PWD/data" -h "$${up}_SERVICE_HOST" -p 5432 -k "$PWD" -c cluster_name=${m}`,
        ],
      },
      params: { PATH: `${PG_BIN}:/usr/bin:/bin` },
      ports: [5432],
      startup_probe: {
        run: { path: `${PG_BIN}/pg_isready`, args: ['-h', `((.svc:${name}.host))`, '-p', `((.svc:${name}.port))`] },
        period_seconds: 0.05,
        failure_threshold: 1200,
      },
    },
    ...extra,
  };
}

/** A nats-server service with two named ports; ready when both accept connections. */
function nats(name: string, m: string): Record<string, unknown> {
  return {
    name,
    grace_period: '2s',
    config: {
      run: {
        path: NATS,
        args: ['-a', `((.svc:${name}.host))`, '-p', `((.svc:${name}.ports.client))`, '-m', `((.svc:${name}.ports.monitor))`, '--name', m],
      },
      ports: [
        { name: 'client', number: 4222 },
        { name: 'monitor', number: 8222 },
      ],
    },
  };
}

/** A task that connects to host:port with node and prints `connected NAME HOST`; host and port are shell words. */
function connects(name: string, host: string, port: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const js = `require('net').connect(Number(process.argv[2]), process.argv[1]).on('connect', () => { console.log('connected ${name} ' + process.argv[1]); process.exit(0) }).on('error', (e) => { console.log('refused ${name} ' + e.code); process.exit(7) })`;
  return {
    task: name,
    config: { params: { JS: js }, run: { path: 'sh', args: ['-c', `exec "${process.execPath}" -e "$JS" ${host} ${port}`] } },
    ...extra,
  };
}

const plan = (steps: unknown[]) => JSON.stringify({ plan: steps });

function services(summary: BuildSummary | undefined) {
  return (summary?.steps ?? []).filter((s) => s.kind === 'service');
}

async function noneLeft(m: string): Promise<void> {
  // Teardown ends before the build does; a short wait covers the kernel reaping the group.
  await waitFor(`no process with ${m}`, () => pidsMatching(m).length === 0, 5000);
}

describe('services', () => {
  test('postgres with a pg_isready probe and nats: psql works, env vars and every ((.svc:...)) form resolve', async () => {
    const m = mark('pg');
    const script = [
      'psql -h "$DB_SERVICE_HOST" -p "$DB_SERVICE_PORT" -U postgres -tA -c "create table t(x int); insert into t values (42); select x * 2 from t"',
      'echo "addr=((.svc:db.address)) host=((.svc:db.host)) port=((.svc:db.port)) ports=((.svc:db.ports.default)) addrs=((.svc:db.addresses.default))"',
      'echo "bus=((.svc:bus.address)) monitor=((.svc:bus.addresses.monitor)) client=((.svc:bus.ports.client))"',
      'echo "env=$DB_SERVICE_HOST:$DB_SERVICE_PORT:$DB_SERVICE_PORT_DEFAULT bus=$BUS_SERVICE_HOST:$BUS_SERVICE_PORT:$BUS_SERVICE_PORT_CLIENT:$BUS_SERVICE_PORT_MONITOR"',
    ].join(' && ');
    const r = await h.run(
      plan([{ task: 'integration', services: [postgres('db', m), nats('bus', m)], config: { run: { path: 'sh', args: ['-c', script] } } }]),
    );
    expect([r.status, r.message]).toEqual(['succeeded', undefined]);
    const out = r.logs.get('plan.0') ?? '';
    expect(out).toContain('84\n');
    const svc = services(r.summary);
    const db = svc.find((s) => s.name === 'db')!;
    const bus = svc.find((s) => s.name === 'bus')!;
    const [dbHost] = db.service!.address!.split(':');
    const [busHost] = bus.service!.address!.split(':');
    expect(dbHost).not.toBe(busHost);
    expect(out).toContain(`addr=${dbHost}:5432 host=${dbHost} port=5432 ports=5432 addrs=${dbHost}:5432`);
    expect(out).toContain(`bus=${busHost}:4222 monitor=${busHost}:8222 client=4222`);
    expect(out).toContain(`env=${dbHost}:5432:5432 bus=${busHost}:4222:4222:8222`);
    expect(svc.map((s) => [s.name, s.state, s.service?.state, s.parent])).toEqual([
      ['db', 'succeeded', 'stopped', 'plan.0'],
      ['bus', 'succeeded', 'stopped', 'plan.0'],
    ]);
    // The service's own output is on its own subject, with Causeway's notes.
    const logs = await collectServiceLogs(h.nc, r.buildId);
    expect(logs.get('plan.0/db')).toMatch(/service db is ready \(startup probe passed/);
    expect(logs.get('plan.0/bus')).toMatch(/Server is ready/);
    await noneLeft(m);
  });

  test('across with 3 values in parallel: each iteration has its own service, on an address of its own', async () => {
    const m = mark('across');
    const r = await h.run(
      plan([
        {
          ...connects('probe', '((.svc:bus.host))', '((.svc:bus.port))'),
          across: [{ var: 'v', values: ['a', 'b', 'c'], max_in_flight: 'all' }],
          services: [nats('bus', m)],
        },
      ]),
    );
    expect(r.status).toBe('succeeded');
    const svc = services(r.summary);
    expect(svc.map((s) => s.parent).sort()).toEqual(['plan.0.across.0', 'plan.0.across.1', 'plan.0.across.2']);
    const hosts = svc.map((s) => s.service!.address!.split(':')[0]);
    expect(new Set(hosts).size).toBe(3);
    for (const [i, s] of svc.entries()) expect(r.logs.get(s.parent!)).toContain(`connected probe ${hosts[i]}`);
    await noneLeft(m);
  });

  test('two concurrent builds use port 5432 without colliding, and neither reaches the other', async () => {
    const m = mark('two');
    // Build A keeps its database up until build B has tried to reach it.
    const a = await h.start(
      plan([
        {
          task: 'hold',
          services: [postgres('db', m)],
          config: { run: { path: 'sh', args: ['-c', 'psql -h "$DB_SERVICE_HOST" -U postgres -tA -c "select 1" && sleep 6'] } },
        },
      ]),
    );
    const aHost = await waitFor('build A ready', async () => {
      const st = await a.query<BuildSummary>('status');
      const db = services(st).find((s) => s.service?.state === 'ready');
      return db?.service?.address?.split(':')[0];
    });
    const b = await h.run(
      plan([
        {
          do: [
            { task: 'own', config: { run: { path: 'sh', args: ['-c', 'psql -h "$DB_SERVICE_HOST" -U postgres -tA -c "select 2"'] } } },
            connects('other', aHost, '5432'),
          ],
          services: [postgres('db', m)],
        },
      ]),
    );
    const ra = await h.finish(a);
    expect(ra.status).toBe('succeeded');
    expect(ra.logs.get('plan.0')).toContain('1\n');
    expect(b.status).toBe('failed');
    expect(b.logs.get('plan.0.do.0')).toContain('2\n');
    // A's address inside B's network has nothing listening (loopback mode: another address, still closed to B).
    expect(b.logs.get('plan.0.do.1')).toMatch(/refused other (ECONNREFUSED|ENETUNREACH|EHOSTUNREACH)/);
    expect(services(b.summary)[0].service!.address!.split(':')[0]).not.toBe(aHost);
    await noneLeft(m);
  });

  test('a probe that never succeeds errors the step with the probe output and the service log', async () => {
    const m = mark('probe');
    const r = await h.run(
      plan([
        {
          task: 'never',
          services: [
            {
              name: 'slow',
              config: {
                // No ports: the probe runs every period from the start.
                run: { path: 'sh', args: ['-c', `echo "listening soon ${m}"; echo "warming up" >&2; while :; do sleep 0.1; done`] },
                startup_probe: {
                  run: { path: 'sh', args: ['-c', 'echo "probe says no"; exit 1'] },
                  period_seconds: 0.05,
                  failure_threshold: 3,
                },
              },
            },
          ],
          config: { run: { path: 'true' } },
        },
      ]),
    );
    expect(r.status).toBe('errored');
    expect(r.message).toMatch(/service slow: startup probe `sh -c .*` failed 3 times/);
    expect(r.message).toContain('probe says no');
    expect(r.message).toContain(`listening soon ${m}`);
    expect(r.message).toContain('warming up');
    const [svc] = services(r.summary);
    expect(svc).toMatchObject({ state: 'errored', service: { state: 'failed' } });
    expect(r.summary?.steps.find((s) => s.id === 'plan.0')).toMatchObject({ state: 'errored' });
    expect(r.logs.get('plan.0')).toBeUndefined();
    await noneLeft(m);
  });

  test('a service that crashes at start errors the step at once, with its last lines, and stops its sibling', async () => {
    const m = mark('crash');
    const started = Date.now();
    const r = await h.run(
      plan([
        {
          task: 'crash',
          services: [
            {
              name: 'bad',
              config: {
                run: { path: 'sh', args: ['-c', `echo "cannot bind ${m}" >&2; exit 3`] },
                ports: [7001],
                startup_probe: { run: { path: 'false' }, period_seconds: 10, failure_threshold: 30 },
              },
            },
            {
              name: 'sibling',
              config: {
                run: { path: 'sh', args: ['-c', `: ${m}; while :; do sleep 0.1; done`] },
                startup_probe: { run: { path: 'false' }, period_seconds: 0.1, failure_threshold: 100000 },
              },
            },
          ],
          config: { run: { path: 'true' } },
        },
      ]),
    );
    expect(r.status).toBe('errored');
    expect(r.message).toContain('service bad exited with status 3 before it was ready');
    expect(r.message).toContain(`cannot bind ${m}`);
    expect(services(r.summary).map((s) => [s.name, s.service?.state])).toEqual([
      ['bad', 'failed'],
      ['sibling', 'stopped'],
    ]);
    // Not after 30 probes 10 s apart (a generous bound, not a timing goal).
    expect(Date.now() - started).toBeLessThan(60_000);
    await noneLeft(m);
  });

  test('abort while probing stops the service; nothing is left running', async () => {
    const m = mark('abort');
    const handle = await h.start(
      plan([
        {
          task: 'waits',
          services: [
            {
              name: 'stuck',
              grace_period: '1s',
              config: {
                run: { path: 'sh', args: ['-c', `trap "" TERM; echo "ignoring SIGTERM ${m}"; while :; do sleep 0.1; done`] },
                ports: [7002],
                startup_probe: { run: { path: 'false' }, period_seconds: 0.1, failure_threshold: 100000 },
              },
            },
          ],
          config: { run: { path: 'true' } },
        },
      ]),
    );
    await waitFor('probing', async () => services(await handle.query<BuildSummary>('status')).some((s) => s.service?.state === 'probing'));
    await waitFor('service process', () => pidsMatching(m).length > 0);
    await handle.cancel();
    const r = await h.finish(handle);
    expect(r.status).toBe('aborted');
    expect(pidsMatching(m)).toEqual([]);
    const logs = await collectServiceLogs(h.nc, r.buildId);
    expect(logs.get('plan.0/stuck')).toContain('service stuck killed (SIGKILL)');
  });

  test('loopback mode (no namespace): redis-server on an address of its own, ready when its port accepts connections', async () => {
    process.env.CAUSEWAY_SERVICE_ISOLATION = 'loopback';
    try {
      const r = await h.run(
        plan([
          {
            task: 'cache',
            services: [
              {
                name: 'cache',
                config: {
                  run: {
                    path: 'redis-server',
                    args: ['--bind', '((.svc:cache.host))', '--port', '((.svc:cache.port))', '--save', '', '--appendonly', 'no'],
                  },
                  ports: [6379],
                },
              },
            ],
            config: {
              run: {
                path: 'sh',
                args: [
                  '-c',
                  'redis-cli -h "$CACHE_SERVICE_HOST" -p "$CACHE_SERVICE_PORT" set k v && redis-cli -h ((.svc:cache.host)) get k',
                ],
              },
            },
          },
        ]),
      );
      expect(r.status).toBe('succeeded');
      expect(r.logs.get('plan.0')).toContain('OK\nv\n');
      const host = services(r.summary)[0].service!.address!.split(':')[0];
      expect(host).toMatch(/^127\.([1-9]\d*)\.\d+\.\d+$/);
      const logs = (await collectServiceLogs(h.nc, r.buildId)).get('plan.0/cache') ?? '';
      expect(logs).toContain("services run on the host's loopback with addresses of their own (CAUSEWAY_SERVICE_ISOLATION=loopback)");
      expect(logs).toContain('every port accepts connections');
      await noneLeft(`redis-server ${host}:6379`);
    } finally {
      delete process.env.CAUSEWAY_SERVICE_ISOLATION;
    }
  });

  test('a service config from a file in an artifact, with an input mapped into the service', async () => {
    const m = mark('file');
    const serviceFile = JSON.stringify({
      inputs: [{ name: 'cfg' }],
      // Spelled so the plan holds no ((.svc:...)) ref: the task below writes the real one into the file.
      run: { path: 'sh', args: ['-c', `cat cfg/greeting; exec "${NATS}" -a "$BUS_SERVICE_HOST" -p %%.svc:bus.port@@ --name ${m}`] },
      ports: [4222],
    });
    const r = await h.run(
      plan([
        {
          task: 'write',
          config: {
            outputs: [{ name: 'svc' }],
            params: { FILE: serviceFile },
            run: {
              path: 'sh',
              args: [
                '-c',
                `printf "%s" "$FILE" | sed -e 's/%%/((/' -e 's/@@/))/' > svc/bus.yml && echo "hello from an input" > svc/greeting`,
              ],
            },
          },
        },
        {
          ...connects('use', '((.svc:bus.host))', '"$BUS_SERVICE_PORT"'),
          services: [{ name: 'bus', file: 'svc/bus.yml', input_mapping: { cfg: 'svc' } }],
        },
      ]),
    );
    expect([r.status, r.message]).toEqual(['succeeded', undefined]);
    const [bus] = services(r.summary);
    expect(bus.service?.address).toMatch(/:4222$/);
    expect(r.logs.get('plan.1')).toContain(`connected use ${bus.service!.address!.split(':')[0]}`);
    expect((await collectServiceLogs(h.nc, r.buildId)).get('plan.1/bus')).toContain('hello from an input');
    await noneLeft(m);
  });

  test('a step that times out, and one that fails, still stop their services', async () => {
    const m = mark('timeout');
    const r = await h.run(
      plan([
        {
          try: { task: 'fails', services: [nats('bus', m)], config: { run: { path: 'sh', args: ['-c', 'exit 1'] } } },
        },
        { task: 'slow', timeout: '1s', services: [nats('bus', m)], config: { run: { path: 'sleep', args: ['30'] } } },
      ]),
    );
    expect(r.status).toBe('failed');
    expect(r.message).toContain('timeout exceeded (1s)');
    expect(services(r.summary).map((s) => s.service?.state)).toEqual(['stopped', 'stopped']);
    await noneLeft(m);
  });
});
