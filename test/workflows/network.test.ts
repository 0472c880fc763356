// The local runtime's service network, with real namespaces, veths and bridges (the worker is
// root): every service instance has a namespace and an address of its own on its build's bridge,
// so services may share a port, also on 0.0.0.0; builds do not reach each other; and nothing of
// a build's network is left after it ends, however it ends.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { reconcileBuilds } from '../../activities/reconcile';
import { removeNetwork, serviceScope } from '../../activities/runtime/local/network';
import { startBuild } from '../../common/build-client';
import { networkName, type ServiceAddress } from '../../common/services';
import { compilePlan } from '../../schemas';
import type { BuildSummary } from '../../schemas/build';
import { testStack } from '../setup/env';
import { killMatching, marker, pidsMatching, startHarness, waitFor, type Harness } from './harness';

const WORKER = path.resolve(__dirname, '../../dist/workers/main.js');
let h: Harness;
const markers: string[] = [];
beforeAll(async () => {
  h = await startHarness({ killGraceMs: 1000 });
});
afterAll(async () => {
  markers.forEach(killMatching);
  await h.stop();
});

function mark(tag: string): string {
  const m = marker(tag);
  markers.push(m);
  return m;
}

/** What the build's network left on the host: its namespaces and its allocations. */
function leftovers(buildId: string): string[] {
  const hub = networkName(buildId);
  const left = (fs.existsSync('/run/netns') ? fs.readdirSync('/run/netns') : []).filter((n) => n === hub || n.startsWith(`${hub}-`));
  if (fs.existsSync(`/run/causeway/net/${hub}`)) left.push(`/run/causeway/net/${hub}`);
  return left;
}

/** Links of ours in the host's namespace: there must never be any (veths and bridges live in the build's namespaces). */
function hostLinks(): string[] {
  return fs.readdirSync('/sys/class/net').filter((n) => /^v[0-9a-f]{12}$/.test(n));
}

async function clean(buildId: string, m: string): Promise<void> {
  await waitFor(`no process with ${m}`, () => pidsMatching(m).length === 0, 5000);
  expect(leftovers(buildId)).toEqual([]);
  expect(hostLinks()).toEqual([]);
}

function services(summary: BuildSummary | undefined) {
  return (summary?.steps ?? []).filter((s) => s.kind === 'service');
}

/** python3's http.server on 0.0.0.0:8080 serving `page` (the issue's case). */
function web(name: string, page: string, m: string): Record<string, unknown> {
  return {
    name,
    grace_period: '1s',
    config: {
      ports: [8080],
      run: {
        path: 'sh',
        args: ['-c', `mkdir -p site && echo "${page}" > site/index.html && cd site && exec python3 -m http.server 8080 # ${m}`],
      },
    },
  };
}

/** Prints `URL -> BODY` or `URL -> error` for each URL (one second each). */
const FETCH = `
import sys, urllib.request
for url in sys.argv[1:]:
    try:
        print(url, '->', urllib.request.urlopen(url, timeout=1).read().decode().strip())
    except Exception as e:
        print(url, '-> error', type(e).__name__)
`;

function fetching(task: string, urls: string, extra: Record<string, unknown> = {}, then = ''): Record<string, unknown> {
  return { task, config: { params: { FETCH }, run: { path: 'sh', args: ['-c', `python3 -c "$FETCH" ${urls}${then}`] } }, ...extra };
}

const plan = (steps: unknown[]) => JSON.stringify({ plan: steps });

describe('a network of its own for every service', () => {
  test('across of three values, each with python3 -m http.server 8080 on 0.0.0.0: each iteration reads its own page, by address and by name', async () => {
    const m = mark('across');
    const r = await h.run(
      plan([
        {
          ...fetching('read', 'http://$WEB_SERVICE_HOST:8080/ http://web:8080/ http://((.svc:web.address))/'),
          across: [{ var: 'v', values: ['a', 'b', 'c'], max_in_flight: 'all' }],
          services: [web('web', 'page-((.:v))', m)],
        },
      ]),
    );
    expect([r.status, r.message]).toEqual(['succeeded', undefined]);
    const svc = services(r.summary);
    const hosts = svc.map((s) => s.service!.address!.split(':')[0]);
    expect(new Set(hosts).size).toBe(3);
    for (const host of hosts) expect(host).toMatch(/^198\.18\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.\d+$/);
    for (const [i, v] of ['a', 'b', 'c'].entries()) {
      const out = r.logs.get(`plan.0.across.${i}`) ?? '';
      expect(out).toContain(`http://${hosts[svc.findIndex((s) => s.parent === `plan.0.across.${i}`)]}:8080/ -> page-${v}`);
      expect(out).toContain(`http://web:8080/ -> page-${v}`);
      expect(out.match(/-> page-/g)).toHaveLength(3);
    }
    await clean(r.buildId, m);
  });

  test('three concurrent builds, each with two services on port 8080: each reaches both of its own by name and nothing of the others', async () => {
    const m = mark('three');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-net-'));
    // The steps run as their builds' uids: they must reach the file.
    fs.chmodSync(dir, 0o755);
    const targets = path.join(dir, 'targets');
    try {
      const tags = ['x', 'y', 'z'];
      // Each step waits for the list of every build's service addresses, written once all are ready.
      const handles = await Promise.all(
        tags.map((tag) =>
          h.start(
            plan([
              {
                task: 'reach',
                services: [web('one', `${tag}-one`, m), web('two', `${tag}-two`, m)],
                config: {
                  params: { FETCH },
                  run: {
                    path: 'sh',
                    args: [
                      '-c',
                      `while [ ! -e ${targets} ]; do sleep 0.1; done; python3 -c "$FETCH" http://one:8080/ http://two:8080/ $(cat ${targets})`,
                    ],
                  },
                },
              },
            ]),
          ),
        ),
      );
      const hosts = await Promise.all(
        handles.map((handle) =>
          waitFor('both services ready', async () => {
            const ready = services(await handle.query<BuildSummary>('status')).filter((s) => s.service?.state === 'ready');
            return ready.length === 2 ? ready.map((s) => s.service!.address!.split(':')[0]) : undefined;
          }),
        ),
      );
      fs.writeFileSync(
        targets,
        hosts
          .flat()
          .map((host) => `http://${host}:8080/`)
          .join(' '),
      );
      const runs = await Promise.all(handles.map((handle) => h.finish(handle)));
      for (const [i, r] of runs.entries()) {
        expect(r.status).toBe('succeeded');
        const out = r.logs.get('plan.0') ?? '';
        const tag = tags[i];
        expect(out).toContain(`http://one:8080/ -> ${tag}-one`);
        expect(out).toContain(`http://two:8080/ -> ${tag}-two`);
        // Its own services answer at their addresses; another build's address is either
        // nothing on this bridge or (every build has the same plan) one of its own.
        for (const line of out
          .split('\n')
          .filter((l) => l.includes(' -> ') && !l.startsWith('http://one') && !l.startsWith('http://two'))) {
          expect(line).toMatch(new RegExp(`-> (${tag}-(one|two)|error .*)$`));
        }
        for (const [j, own] of hosts[i].entries()) expect(out).toContain(`http://${own}:8080/ -> ${tag}-${['one', 'two'][j]}`);
        await clean(r.buildId, m);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a build's services reach each other by name: a sibling's startup probe reads the other's page", async () => {
    const m = mark('siblings');
    const reader = {
      ...web('reader', 'r', m),
      // The probe runs in the reader's own namespace, with its view of /etc/hosts.
      config: {
        ...(web('reader', 'r', m).config as Record<string, unknown>),
        startup_probe: {
          run: {
            path: 'python3',
            args: ['-c', "import urllib.request as u; assert u.urlopen('http://web:8080/', timeout=1).read() == b'w\\n'"],
          },
          period_seconds: 0.1,
          failure_threshold: 300,
        },
      },
    };
    const r = await h.run(plan([fetching('both', 'http://web:8080/ http://reader:8080/', { services: [web('web', 'w', m), reader] })]));
    expect([r.status, r.message]).toEqual(['succeeded', undefined]);
    expect(r.logs.get('plan.0')).toContain('http://web:8080/ -> w');
    expect(r.logs.get('plan.0')).toContain('http://reader:8080/ -> r');
    await clean(r.buildId, m);
  });

  test('a failed step and an aborted build leave no namespace, link or process', async () => {
    const m = mark('fail');
    const failed = await h.run(plan([fetching('fails', 'http://web:8080/', { services: [web('web', 'p', m)] }, '; exit 1')]));
    expect(failed.status).toBe('failed');
    expect(failed.logs.get('plan.0')).toContain('http://web:8080/ -> p');
    await clean(failed.buildId, m);

    const handle = await h.start(
      plan([
        {
          task: 'waits',
          services: [web('web', 'p', m), web('other', 'q', m)],
          config: { run: { path: 'sh', args: ['-c', `sleep 60 # ${m}`] } },
        },
      ]),
    );
    await waitFor('step running', () => pidsMatching(`sleep 60 # ${m}`).length > 0);
    expect(leftovers(handle.workflowId).length).toBeGreaterThan(0);
    await handle.cancel();
    const aborted = await h.finish(handle);
    expect(aborted.status).toBe('aborted');
    await clean(aborted.buildId, m);
  });

  test('worker SIGKILL, build terminated: the reconciler removes the processes and the network', async () => {
    if (!fs.existsSync(WORKER)) throw new Error('run `npm run build` first (npm test does)');
    const m = mark('kill');
    const stack = testStack();
    // The worker shares the stack's home: its NATS credentials and payload codec key are there.
    const home = stack.home;
    const logs = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-net-kill-'));
    const taskQueue = `net-kill-${randomUUID()}`;
    let worker: ChildProcess | undefined;
    try {
      const log = fs.openSync(path.join(logs, 'worker.log'), 'a');
      worker = spawn(process.execPath, [WORKER], {
        env: {
          ...process.env,
          TEMPORAL_ADDRESS: stack.temporalAddress,
          NATS_URL: stack.natsUrl,
          CAUSEWAY_HOME: home,
          CAUSEWAY_WORKER_NAME: `net-kill-${randomUUID().slice(0, 8)}`,
          CAUSEWAY_TASK_QUEUE: taskQueue,
          CAUSEWAY_LOG_LEVEL: 'warn',
        },
        stdio: ['ignore', log, log],
      });
      fs.closeSync(log);
      const text = plan([
        { task: 'waits', services: [web('web', 'p', m)], config: { run: { path: 'sh', args: ['-c', `sleep 60 # ${m}`] } } },
      ]);
      const handle = await startBuild(h.client, { plan: compilePlan({ text, file: 'kill.yml' }), taskQueue });
      // A worker process bundles the workflow code first: minutes on a loaded 2-CPU machine.
      await waitFor('step running', () => pidsMatching(`sleep 60 # ${m}`).length > 0, 240_000).catch((err: Error) => {
        throw new Error(`${err.message}; the worker's log:\n${fs.readFileSync(path.join(logs, 'worker.log'), 'utf8')}`);
      });
      worker.kill('SIGKILL');
      await new Promise((resolve) => worker!.once('exit', resolve));
      await handle.terminate('the worker was killed');
      expect(pidsMatching(m).length).toBeGreaterThan(0);
      expect(leftovers(handle.workflowId).length).toBeGreaterThan(0);

      const report = await reconcileBuilds({ home, client: h.client, retentionMs: 24 * 3600_000, killGraceMs: 1000 });
      expect(report.networks).toContain(handle.workflowId);
      await clean(handle.workflowId, m);
    } finally {
      worker?.kill('SIGKILL');
      fs.rmSync(logs, { recursive: true, force: true });
    }
  }, 360_000);

  test('addresses are allocated once per service instance, also when its siblings and retries ask at once', async () => {
    const buildId = `build-${randomUUID()}`;
    const names = Array.from({ length: 40 }, (_, i) => `s${i}`);
    const scope: Record<string, ServiceAddress> = Object.fromEntries(names.map((name) => [name, { name, host: '127.1.1.1', ports: {} }]));
    try {
      // Every service's start asks for all its siblings' addresses at once, as in a step with 40 services.
      const views = await Promise.all(
        names.map((name) => serviceScope({ buildId, runId: 'r', scopeStepId: 'plan.0', runKey: '1', name }, scope, names)),
      );
      const first = names.map((n) => views[0][n].host);
      expect(new Set(first).size).toBe(names.length);
      for (const view of views) expect(names.map((n) => view[n].host)).toEqual(first);
      // Another iteration of the same step: other instances, other addresses.
      const other = await serviceScope({ buildId, runId: 'r', scopeStepId: 'plan.0', runKey: '2', name: 's0' }, scope, names);
      expect(names.filter((n) => first.includes(other[n].host))).toEqual([]);
    } finally {
      await removeNetwork(buildId);
    }
    expect(leftovers(buildId)).toEqual([]);
  });
});
