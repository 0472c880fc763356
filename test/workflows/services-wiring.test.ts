// How services are wired to steps, against the real Temporal dev server and NATS, services and
// steps on the in-memory fake runtime (workflow semantics only): which steps share a service,
// every ((.svc:...)) form and NAME_SERVICE_* variable, a service's inputs, and that every exit
// path (probe failure, crash, unresolved ref, failure, timeout, abort) stops the services.
// services.test.ts runs real servers in their own network namespaces on the local runtime.
import { randomUUID } from 'node:crypto';
import type { BuildSummary } from '../../schemas/build';
import { startHarness, waitFor, type BuildRun, type Harness } from './harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ runtime: 'fake' });
});
afterAll(async () => {
  await h.stop();
});

const plan = (steps: unknown[]) => JSON.stringify({ plan: steps });
const run = (script: string) => ({ path: 'sh', args: ['-c', script] });
const task = (name: string, script: string, extra: Record<string, unknown> = {}) => ({
  task: name,
  config: { run: run(script) },
  ...extra,
});
/** A service that runs until it is stopped, with the given ports. */
const service = (name: string, ports: unknown[] = [], extra: Record<string, unknown> = {}) => ({
  name,
  config: { run: run('sleep 1000'), ports },
  ...extra,
});

function services(summary: BuildSummary | undefined) {
  return (summary?.steps ?? []).filter((s) => s.kind === 'service');
}
const stepOf = (r: BuildRun, id: string) => r.summary?.steps.find((s) => s.id === id);
/** What the fake runtime still runs: every exit path must leave nothing. */
const left = () => [...h.fake!.services.keys()].filter((k) => k.includes(current));
let current = '';
beforeEach(() => {
  current = '';
});
async function build(steps: unknown[]): Promise<BuildRun> {
  const handle = await h.start(plan(steps));
  current = handle.workflowId;
  return h.finish(handle);
}

describe('services wiring', () => {
  test('every ((.svc:...)) form and NAME_SERVICE_* variable resolves, each service at an address of its own', async () => {
    const script = [
      'echo "addr=((.svc:db.address)) host=((.svc:db.host)) port=((.svc:db.port)) ports=((.svc:db.ports.default)) addrs=((.svc:db.addresses.default))"',
      'echo "bus=((.svc:bus.address)) monitor=((.svc:bus.addresses.monitor)) client=((.svc:bus.ports.client))"',
      'echo "env=$DB_SERVICE_HOST:$DB_SERVICE_PORT:$DB_SERVICE_PORT_DEFAULT bus=$BUS_SERVICE_HOST:$BUS_SERVICE_PORT:$BUS_SERVICE_PORT_CLIENT:$BUS_SERVICE_PORT_MONITOR"',
    ].join(' && ');
    const bus = [
      { name: 'client', number: 4222 },
      { name: 'monitor', number: 8222 },
    ];
    const r = await build([task('integration', script, { services: [service('db', [5432]), service('bus', bus)] })]);
    expect([r.status, r.message]).toEqual(['succeeded', undefined]);
    const svc = services(r.summary);
    const [dbHost, busHost] = svc.map((s) => s.service!.address!.split(':')[0]);
    expect(dbHost).not.toBe(busHost);
    expect(r.logs.get('plan.0')).toBe(
      `addr=${dbHost}:5432 host=${dbHost} port=5432 ports=5432 addrs=${dbHost}:5432\n` +
        `bus=${busHost}:4222 monitor=${busHost}:8222 client=4222\n` +
        `env=${dbHost}:5432:5432 bus=${busHost}:4222:4222:8222\n`,
    );
    expect(svc.map((s) => [s.name, s.state, s.service?.state, s.parent])).toEqual([
      ['db', 'succeeded', 'stopped', 'plan.0'],
      ['bus', 'succeeded', 'stopped', 'plan.0'],
    ]);
    expect(left()).toEqual([]);
  });

  test('services of a do and an in_parallel are shared by their steps; an inner service shadows an outer one', async () => {
    const echo = (name: string) => task(name, `echo "${name} $BUS_SERVICE_HOST ((.svc:bus.port))"`);
    const r = await build([
      { do: [echo('first'), echo('second')], services: [service('bus', [4222])] },
      {
        in_parallel: [echo('left'), { ...echo('right'), services: [service('bus', [4333])] }],
        services: [service('bus', [4222])],
      },
    ]);
    expect(r.status).toBe('succeeded');
    const hosts = Object.fromEntries(services(r.summary).map((s) => [s.parent, s.service!.address!.split(':')[0]]));
    expect(Object.keys(hosts).sort()).toEqual(['plan.0', 'plan.1', 'plan.1.in_parallel.1']);
    expect(r.logs.get('plan.0.do.0')).toBe(`first ${hosts['plan.0']} 4222\n`);
    expect(r.logs.get('plan.0.do.1')).toBe(`second ${hosts['plan.0']} 4222\n`);
    expect(r.logs.get('plan.1.in_parallel.0')).toBe(`left ${hosts['plan.1']} 4222\n`);
    expect(r.logs.get('plan.1.in_parallel.1')).toBe(`right ${hosts['plan.1.in_parallel.1']} 4333\n`);
    expect(services(r.summary).every((s) => s.service?.state === 'stopped')).toBe(true);
    expect(left()).toEqual([]);
  });

  test('across with 3 values in parallel: each iteration has its own service', async () => {
    const r = await build([
      {
        ...task('probe', 'echo "((.:v)) ((.svc:bus.host))"'),
        across: [{ var: 'v', values: ['a', 'b', 'c'], max_in_flight: 'all' }],
        services: [service('bus', [4222])],
      },
    ]);
    expect(r.status).toBe('succeeded');
    const svc = services(r.summary);
    expect(svc.map((s) => s.parent).sort()).toEqual(['plan.0.across.0', 'plan.0.across.1', 'plan.0.across.2']);
    const hosts = svc.map((s) => s.service!.address!.split(':')[0]);
    expect(new Set(hosts).size).toBe(3);
    for (const [i, s] of svc.entries()) expect(r.logs.get(s.parent!)).toBe(`${'abc'[Number(s.parent!.slice(-1))]} ${hosts[i]}\n`);
    expect(left()).toEqual([]);
  });

  test('a probe that never succeeds errors the step with the probe output; the step does not run', async () => {
    const probe = { run: run('echo "probe says no"; exit 1'), period_seconds: 0.01, failure_threshold: 3 };
    const r = await build([
      task('never', 'echo ran', { services: [{ name: 'slow', config: { run: run('sleep 1000'), startup_probe: probe } }] }),
    ]);
    expect(r.status).toBe('errored');
    expect(r.message).toMatch(/service slow: startup probe `sh -c .*` failed 3 times/);
    expect(r.message).toContain('probe says no');
    expect(services(r.summary)[0]).toMatchObject({ state: 'errored', service: { state: 'failed' } });
    expect(stepOf(r, 'plan.0')).toMatchObject({ state: 'errored' });
    expect(r.logs.get('plan.0')).toBeUndefined();
    expect(left()).toEqual([]);
  });

  test('a service that crashes at start errors the step, with its last lines, and stops its sibling', async () => {
    const never = { run: run('exit 1'), period_seconds: 0.05, failure_threshold: 100000 };
    const r = await build([
      task('crash', 'true', {
        services: [
          { name: 'bad', config: { run: run('echo "cannot bind" >&2; exit 3'), ports: [7001], startup_probe: never } },
          { name: 'sibling', config: { run: run('sleep 1000'), startup_probe: never } },
        ],
      }),
    ]);
    expect(r.status).toBe('errored');
    expect(r.message).toContain('service bad exited with status 3 before it was ready');
    expect(r.message).toContain('cannot bind');
    expect(services(r.summary).map((s) => [s.name, s.service?.state])).toEqual([
      ['bad', 'failed'],
      ['sibling', 'stopped'],
    ]);
    expect(left()).toEqual([]);
  });

  test('a service config from a file in an artifact, with an input mapped into the service', async () => {
    const seen = `/svc-${randomUUID()}`;
    const file = JSON.stringify({ inputs: [{ name: 'cfg' }], run: run(`cat cfg/greeting > ${seen}; sleep 1000`), ports: [4222] });
    const r = await build([
      task('write', '', {
        config: { outputs: [{ name: 'svc' }], run: run(`echo '${file}' > svc/bus.yml && echo "hello from an input" > svc/greeting`) },
      }),
      task('use', `echo "((.svc:bus.address))"`, { services: [{ name: 'bus', file: 'svc/bus.yml', input_mapping: { cfg: 'svc' } }] }),
    ]);
    expect([r.status, r.message]).toEqual(['succeeded', undefined]);
    const [bus] = services(r.summary);
    expect(bus.service?.address).toMatch(/:4222$/);
    expect(r.logs.get('plan.1')).toBe(`${bus.service!.address}\n`);
    expect(h.fake!.host.get(seen)).toBe('hello from an input\n');
    expect(left()).toEqual([]);
  });

  test('a service input no step produced errors the step, naming it and what is available', async () => {
    const r = await build([
      task('use', 'true', { services: [{ name: 'bus', config: { inputs: [{ name: 'cfg' }], run: run('sleep 1000') } }] }),
    ]);
    expect(r.status).toBe('errored');
    expect(r.message).toContain('service bus: missing input `cfg`: no earlier step produced it; artifacts available: none');
    expect(left()).toEqual([]);
  });

  test('a ((.svc:...)) ref no service in scope answers errors the step, naming the service, and its sibling is stopped', async () => {
    // A sibling from a file: its ports are unknown when the plan is compiled, so only the start can tell.
    const file = JSON.stringify({ run: run('sleep 1000') });
    const r = await build([
      task('write', '', { config: { outputs: [{ name: 'svc' }], run: run(`echo '${file}' > svc/cfg.yml`) } }),
      task('use', 'true', {
        services: [
          { name: 'cfg', file: 'svc/cfg.yml' },
          { name: 'web', config: { run: run('echo ((.svc:cfg.ports.nope))') } },
        ],
      }),
    ]);
    expect(r.status).toBe('errored');
    expect(r.message).toContain(
      'service web: cannot resolve ((.svc:cfg.ports.nope)): services in scope: cfg (ports none); web (ports none)',
    );
    expect(services(r.summary).find((s) => s.name === 'web')).toMatchObject({ state: 'errored', service: { state: 'failed' } });
    expect(stepOf(r, 'plan.1')).toMatchObject({ state: 'errored' });
    expect(left()).toEqual([]);
  });

  test('a step that times out, and one that fails, still stop their services', async () => {
    const r = await build([
      { try: task('fails', 'exit 1', { services: [service('bus', [4222])] }) },
      task('slow', 'sleep 1000', { timeout: '1s', services: [service('bus', [4222])] }),
    ]);
    expect(r.status).toBe('failed');
    expect(r.message).toContain('timeout exceeded (1s)');
    expect(services(r.summary).map((s) => s.service?.state)).toEqual(['stopped', 'stopped']);
    expect(left()).toEqual([]);
  });

  test('a service that exits while its step uses it is marked failed', async () => {
    const r = await build([task('uses', 'sleep 2', { services: [{ name: 'short', config: { run: run('sleep 0.1; exit 4') } }] })]);
    expect(r.status).toBe('succeeded');
    const [svc] = services(r.summary);
    expect(svc.service?.state).toBe('failed');
    expect(JSON.stringify(svc)).toContain('exited with status 4 while the step was using it');
  });

  test('abort while probing stops the service', async () => {
    const handle = await h.start(
      plan([
        task('waits', 'true', {
          services: [
            {
              name: 'stuck',
              config: { run: run('sleep 1000'), startup_probe: { run: run('exit 1'), period_seconds: 0.05, failure_threshold: 100000 } },
            },
          ],
        }),
      ]),
    );
    current = handle.workflowId;
    await waitFor('probing', async () => services(await handle.query<BuildSummary>('status')).some((s) => s.service?.state === 'probing'));
    await handle.cancel();
    const r = await h.finish(handle);
    expect(r.status).toBe('aborted');
    // A cancelled workflow returns no summary; its status query still answers.
    expect(services(await handle.query<BuildSummary>('status')).map((s) => s.service?.state)).toEqual(['stopped']);
    expect(left()).toEqual([]);
  });
});
