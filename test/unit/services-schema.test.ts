import { compilePlan, PlanError, type TaskStep, type DoStep } from '../../schemas';

const compile = (text: string) => compilePlan({ text, file: 'p.yml' });
const messages = (text: string): string[] => {
  try {
    compile(text);
  } catch (e) {
    if (e instanceof PlanError) return e.issues.map((i) => `${i.path}: ${i.message}`);
    throw e;
  }
  return [];
};

const pg = `
    - name: db
      config:
        run: {path: postgres, args: [-h, ((.svc:db.host))]}
        ports: [{number: 5432}]
        startup_probe:
          run: {path: pg_isready, args: [-h, ((.svc:db.host)), -p, ((.svc:db.port))]}`;

describe('services: schema', () => {
  test('a task with a service compiles with defaults; ((.svc:...)) refs stay as text', () => {
    const plan = compile(`
plan:
- task: test
  services:${pg}
  config:
    run: {path: psql, args: [((.svc:db.address)), ((.svc:db.addresses.default)), ((.svc:db.ports.default))]}
`);
    const step = plan.plan.steps[0] as TaskStep;
    expect(step.services).toEqual([
      {
        name: 'db',
        config: {
          inputs: [],
          params: {},
          run: { path: 'postgres', args: ['-h', '((.svc:db.host))'] },
          ports: [{ name: 'default', number: 5432 }],
          startup_probe: {
            run: { path: 'pg_isready', args: ['-h', '((.svc:db.host))', '-p', '((.svc:db.port))'] },
            failureThreshold: 30,
            periodSeconds: 1,
            timeoutSeconds: 1,
          },
        },
        params: {},
        inputMapping: {},
        gracePeriodMs: 10_000,
      },
    ]);
    expect(step.config?.run.args).toEqual(['((.svc:db.address))', '((.svc:db.addresses.default))', '((.svc:db.ports.default))']);
  });

  test('do and in_parallel share services with nested steps; grace_period is a Go duration', () => {
    const plan = compile(`
plan:
- do:
  - in_parallel:
    - task: a
      config: {run: {path: sh, args: [-c, 'echo ((.svc:cache.port)) ((.svc:db.addresses.pg))']}}
    services:
    - name: cache
      grace_period: 1500ms
      config: {run: {path: nats-server}, ports: [{number: 4222}]}
  services:
  - name: db
    file: repo/db.yml
`);
    const d = plan.plan.steps[0] as DoStep;
    expect(d.services?.[0]).toMatchObject({ name: 'db', file: 'repo/db.yml', gracePeriodMs: 10_000 });
    expect(d.steps[0].services?.[0]).toMatchObject({ name: 'cache', gracePeriodMs: 1500 });
  });

  test('services on another step kind are an error naming the kind', () => {
    expect(
      messages(`
plan:
- try: {task: a, config: {run: {path: "true"}}}
  services: [{name: db, config: {run: {path: x}, ports: [1]}}]
`),
    ).toEqual([expect.stringContaining('`services` applies to task, do and in_parallel steps; this is a try step')]);
  });

  test('duplicate names, bad ports, missing run are reported before the build', () => {
    const m = messages(`
plan:
- task: a
  config: {run: {path: "true"}}
  services:
  - {name: db, config: {run: {path: x}, ports: [{number: 0}]}}
  - {name: db, config: {run: {path: x}, ports: [{number: 5432}]}}
  - {name: web, config: {ports: [{name: http, number: 80}, {name: http, number: 70000}]}}
  - {name: two, config: {run: {path: x}, ports: [{number: 1}, {number: 2}]}}
  - {name: nothing}
`);
    expect(m).toEqual(
      expect.arrayContaining([
        expect.stringContaining('services[0].config.ports[0].number: a port is a number in 1..65535'),
        expect.stringContaining("services[1].name: duplicate service name `db` in this step's services"),
        expect.stringContaining('services[2].config.ports[1].number: a port is a number in 1..65535'),
        expect.stringContaining('services[2].config.ports[1].name: duplicate port name `http`'),
        expect.stringContaining('services[3].config.ports[0]: name every port'),
        expect.stringContaining('service `nothing` needs `config` or `file`'),
      ]),
    );
    expect(
      messages(`
plan:
- task: a
  config: {run: {path: "true"}}
  services: [{name: web, config: {ports: [80]}}]
`),
    ).toEqual([expect.stringContaining('service `web` needs `run`: the local runtime runs a service as a process')]);
  });

  test('an unknown service names the steps in scope that define services, or says none do', () => {
    expect(
      messages(`
plan:
- task: a
  config: {run: {path: echo, args: [((.svc:db.host))]}}
`),
    ).toEqual([expect.stringContaining('unknown service `db` in ((.svc:db.host)): no step in scope defines services')]);
    const m = messages(`
plan:
- do:
  - task: a
    services: [{name: cache, config: {run: {path: x}, ports: [1]}}]
    config: {run: {path: echo, args: [((.svc:dbx.host))]}}
  - task: b
    config: {run: {path: echo, args: [((.svc:cache.host))]}}
  services: [{name: db, config: {run: {path: x}, ports: [2]}}]
  on_success: {task: c, config: {run: {path: echo, args: [((.svc:db.host))]}}}
`);
    expect(m).toEqual([
      expect.stringContaining(
        'unknown service `dbx` in ((.svc:dbx.host)): the steps in scope that define services are do (plan.0) (db); task `a` (plan.0.do.0) (cache)',
      ),
      expect.stringContaining(
        'unknown service `cache` in ((.svc:cache.host)): the steps in scope that define services are do (plan.0) (db)',
      ),
      expect.stringContaining('unknown service `db` in ((.svc:db.host)): no step in scope defines services'),
    ]);
  });

  test('unknown fields and ports after the service name are errors', () => {
    const m = messages(`
plan:
- task: a
  services: [{name: db, config: {run: {path: x}, ports: [{name: pg, number: 5432}]}}]
  config: {run: {path: echo, args: ['((.svc:db.hostname))', '((.svc:db.ports.http))', '((.svc:db))', '((.svc:db.host.x))']}}
`);
    expect(m).toEqual([
      expect.stringContaining(
        'unknown field in ((.svc:db.hostname)): after the service name comes address, host, port, addresses.PORT or ports.PORT',
      ),
      expect.stringContaining('service `db` has no port `http` in ((.svc:db.ports.http)); its ports are pg'),
      expect.stringContaining('((.svc:db)) needs a field after the service name'),
      expect.stringContaining('unknown field in ((.svc:db.host.x))'),
    ]);
  });
});
