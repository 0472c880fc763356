// A service's pod on the kubernetes runtime, built by a pure function: its inputs through the
// input-fetcher, and its default readiness on every declared port.
import type http from 'node:http';
import net from 'node:net';
import { probePorts } from '../../agent/causeway-agent';
import { CONTAINERS, WORKDIR } from '../../activities/runtime/kubernetes/pod';
import { PORT_PROBE_PORT, buildServiceObjects, type ServiceObjectsInput } from '../../activities/runtime/kubernetes/service-pod';
import type { ServiceConfig } from '../../schemas/compiled';

const config = (over: Partial<ServiceConfig> = {}): ServiceConfig => ({
  image_resource: { type: 'registry-image', source: { repository: 'web', tag: '1' } },
  inputs: [],
  params: {},
  run: { path: 'serve', args: [] },
  ports: [{ name: 'default', number: 8080 }],
  ...over,
});
const input = (over: Partial<ServiceObjectsInput> = {}): ServiceObjectsInput => ({
  namespace: 'ns',
  ref: { buildId: 'b1', runId: 'r1', scopeStepId: 'plan.0', runKey: '1', name: 'web' },
  config: config(),
  params: {},
  worker: 'w',
  anchor: { name: 'causeway-b1', uid: 'u1' },
  gracePeriodMs: 10_000,
  tokenSecret: 'causeway-b1-token',
  agentImage: 'agent:1',
  ...over,
});

test('a service with inputs gets the input-fetcher, and runs in the work dir they land in', () => {
  const { pod } = buildServiceObjects(
    input({
      config: config({ inputs: [{ name: 'site' }], run: { path: 'serve', args: [], dir: 'site' } }),
      inputs: [{ name: 'site', path: 'site', url: 'http://198.18.0.7:7788/artifacts/site' }],
    }),
  );
  const [fetcher] = pod.spec!.initContainers!;
  expect(fetcher.name).toBe(CONTAINERS.fetcher);
  expect(fetcher.image).toBe('agent:1');
  const env = Object.fromEntries(fetcher.env!.map((e) => [e.name, e.value ?? e.valueFrom]));
  expect(JSON.parse(env.CAUSEWAY_INPUTS as string)).toEqual([{ name: 'site', path: 'site', url: 'http://198.18.0.7:7788/artifacts/site' }]);
  expect(env.CAUSEWAY_ARTIFACT_TOKEN).toEqual({ secretKeyRef: { name: 'causeway-b1-token', key: 'token' } });
  const service = pod.spec!.containers[0];
  expect(service.volumeMounts).toEqual([{ name: 'work', mountPath: WORKDIR }]);
  expect(service.workingDir).toBe(`${WORKDIR}/site`);
  expect(pod.spec!.volumes).toEqual([{ name: 'work', emptyDir: {} }]);
});

test('a service param holding a secret value comes from the service’s Secret, not the pod spec', () => {
  const { pod, envSecret } = buildServiceObjects(
    input({ params: { POSTGRES_PASSWORD: 'pg-s3cret', PGUSER: 'app' }, secretValues: ['pg-s3cret'] }),
  );
  expect(JSON.stringify(pod)).not.toContain('pg-s3cret');
  const env = Object.fromEntries(pod.spec!.containers[0].env!.map((e) => [e.name, e.value ?? e.valueFrom]));
  expect(env).toEqual({
    PGUSER: 'app',
    POSTGRES_PASSWORD: { secretKeyRef: { name: `${pod.metadata!.name}-env`, key: 'POSTGRES_PASSWORD' } },
  });
  expect(envSecret).toMatchObject({ metadata: { name: `${pod.metadata!.name}-env` }, stringData: { POSTGRES_PASSWORD: 'pg-s3cret' } });
  expect(envSecret!.metadata!.ownerReferences).toEqual(pod.metadata!.ownerReferences);
  expect(buildServiceObjects(input({ params: { PGUSER: 'app' }, secretValues: ['pg-s3cret'] })).envSecret).toBeUndefined();
});

test('a service without inputs has no fetcher and keeps its image’s working dir', () => {
  const { pod } = buildServiceObjects(input());
  expect(pod.spec!.initContainers).toBeUndefined();
  expect(pod.spec!.volumes).toBeUndefined();
  expect(pod.spec!.containers[0].workingDir).toBeUndefined();
});

test('default readiness: one port is a TCP startup probe; several get a port-probe checking them all', () => {
  const one = buildServiceObjects(input()).pod.spec!.containers;
  expect(one.map((c) => c.name)).toEqual([CONTAINERS.service]);
  expect(one[0].startupProbe?.tcpSocket).toEqual({ port: 8080 });

  const ports = [
    { name: 'default', number: 8080 },
    { name: 'admin', number: 8081 },
  ];
  const two = buildServiceObjects(input({ config: config({ ports }) })).pod.spec!.containers;
  expect(two.map((c) => c.name)).toEqual([CONTAINERS.service, CONTAINERS.portProbe]);
  expect(two[0].startupProbe).toBeUndefined();
  const prober = two[1];
  expect(prober.command).toEqual(['causeway-agent', 'probe']);
  expect(prober.startupProbe?.httpGet).toEqual({ path: '/ready', port: PORT_PROBE_PORT });
  const env = Object.fromEntries(prober.env!.map((e) => [e.name, e.value ?? e.valueFrom]));
  expect(JSON.parse(env.CAUSEWAY_PROBE_PORTS as string)).toEqual(ports);
  expect(env.CAUSEWAY_PROBE_HOST).toEqual({ fieldRef: { fieldPath: 'status.podIP' } });

  // A startup_probe of the service's own decides alone, as on the local runtime.
  const probe = { run: { path: 'check', args: [] }, failureThreshold: 5, periodSeconds: 1, timeoutSeconds: 1 };
  const own = buildServiceObjects(input({ config: config({ ports, startup_probe: probe }) })).pod.spec!.containers;
  expect(own.map((c) => c.name)).toEqual([CONTAINERS.service]);
  expect(own[0].startupProbe?.exec).toEqual({ command: ['check'] });
});

test('the port-probe answers 200 only once every port accepts connections, naming the closed ones', async () => {
  const open = net.createServer();
  await new Promise<void>((r) => open.listen(0, '127.0.0.1', r));
  const closed = net.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const closedPort = (closed.address() as net.AddressInfo).port;
  await new Promise((r) => closed.close(r));
  const ports = [
    { name: 'web', number: (open.address() as net.AddressInfo).port },
    { name: 'admin', number: closedPort },
  ];
  let server: http.Server | undefined;
  try {
    const probe = await probePorts({ host: '127.0.0.1', ports, port: 0, listen: '127.0.0.1' });
    server = probe.server;
    const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/ready`;
    const before = await fetch(url);
    expect([before.status, await before.text()]).toEqual([
      503,
      `ports not accepting connections at 127.0.0.1: admin ${closedPort} (ECONNREFUSED)\n`,
    ]);
    expect(probe.last()).toMatch(/admin/);
    const late = net.createServer();
    await new Promise<void>((r) => late.listen(closedPort, '127.0.0.1', r));
    try {
      expect((await fetch(url)).status).toBe(200);
    } finally {
      late.close();
    }
  } finally {
    server?.close();
    open.close();
  }
});
