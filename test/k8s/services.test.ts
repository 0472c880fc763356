// Services on the kubernetes runtime against the real apiserver, for what needs the API server
// only: the objects a service is (a pod plus a Service, the startup probe as the pod's
// startupProbe, the port-probe container, the build's NetworkPolicy) as the apiserver stores
// them, readiness from the pod's Ready condition (KWOK reports it as a kubelet would, without a
// container), ((.svc:...)) refs to its siblings, stop. A service's real log, exit and image pull
// error: test/k8s/node/services.test.ts.
import type { ServiceAddress } from '../../common/services';
import { k8s, type CoreV1Api } from '../../activities/runtime/kubernetes/client';
import { CONTAINERS, LABELS, anchorName } from '../../activities/runtime/kubernetes/pod';
import { followPod } from '../../activities/runtime/kubernetes/pod-watcher';
import { startService, stopService } from '../../activities/runtime/kubernetes/service';
import { PORT_PROBE_PORT, SERVICE_LABEL, serviceObjectName } from '../../activities/runtime/kubernetes/service-pod';
import { serviceEnd, serviceReadiness } from '../../activities/runtime/kubernetes/pod-status';
import { KubernetesRuntime } from '../../activities/runtime/kubernetes/runtime';
import type { ResolvedServiceRequest } from '../../activities/runtime/types';
import type { ServiceConfig } from '../../schemas/compiled';
import { adminCore, adminKubeConfig, freshNamespace, podGone, uniqueBuildId } from './setup/env';

let core: CoreV1Api;
let namespace: string;
let rt: KubernetesRuntime;

beforeAll(async () => {
  core = adminCore();
  namespace = await freshNamespace(core, 'svc');
  rt = new KubernetesRuntime({ namespace, worker: 'svc-test', kubeConfig: adminKubeConfig(), graceSeconds: 1, logDrainMs: 1000 });
});

const postgres = (over: Partial<ServiceConfig> = {}): ServiceConfig => ({
  image_resource: { type: 'registry-image', source: { repository: 'postgres', tag: '17' } },
  inputs: [],
  params: { POSTGRES_PASSWORD: 'pw' },
  run: { path: 'docker-entrypoint.sh', args: ['postgres'] },
  ports: [{ name: 'default', number: 5432 }],
  startup_probe: { run: { path: 'pg_isready', args: ['-h', '127.0.0.1'] }, failureThreshold: 30, periodSeconds: 0.5, timeoutSeconds: 1 },
  ...over,
});

function request(config: ServiceConfig, name = 'db', buildId = uniqueBuildId()): ResolvedServiceRequest {
  return {
    buildId,
    runId: 'run-1',
    scopeStepId: 'plan.0',
    runKey: '1',
    name,
    plan: 'svc',
    spec: { name, config, params: { EXTRA: '1' }, inputMapping: {}, gracePeriodMs: 3000 },
    address: { name, host: '127.1.1.1', ports: {} },
    scope: {},
    siblings: [name],
    artifacts: {},
  };
}

test('a service is a pod behind a Service, its startup probe the pod’s startupProbe, its address the Service’s DNS name', async () => {
  const req = request(postgres());
  const address = await startService(rt, req);
  const name = serviceObjectName(req);
  expect(address).toEqual({ name: 'db', host: `${name}.${namespace}.svc`, ports: { default: 5432 }, primaryPort: 'default' });

  const pod = await core.readNamespacedPod({ name, namespace });
  const c = pod.spec!.containers[0];
  expect(c.image).toBe('postgres:17');
  expect(c.command).toEqual(['docker-entrypoint.sh']);
  expect(c.env).toEqual([
    { name: 'EXTRA', value: '1' },
    { name: 'POSTGRES_PASSWORD', value: 'pw' },
  ]);
  expect(c.ports).toEqual([{ name: 'default', containerPort: 5432, protocol: 'TCP' }]);
  expect(c.startupProbe).toMatchObject({
    exec: { command: ['pg_isready', '-h', '127.0.0.1'] },
    failureThreshold: 30,
    periodSeconds: 1,
    timeoutSeconds: 1,
  });
  expect(c.readinessProbe).toBeUndefined();
  expect(pod.spec?.terminationGracePeriodSeconds).toBe(3);
  const anchor = await core.readNamespacedConfigMap({ name: anchorName(req.buildId), namespace });
  expect(pod.metadata?.ownerReferences?.[0].uid).toBe(anchor.metadata?.uid);

  const svc = await core.readNamespacedService({ name, namespace });
  expect(svc.spec?.selector).toEqual({ [SERVICE_LABEL]: name });
  expect(svc.spec?.ports?.map((p) => ({ name: p.name, port: p.port, targetPort: p.targetPort }))).toEqual([
    { name: 'default', port: 5432, targetPort: 5432 },
  ]);
  expect(svc.spec?.clusterIP).toMatch(/^198\.19\./);
  expect(svc.metadata?.ownerReferences?.[0].uid).toBe(anchor.metadata?.uid);

  // only the build's pods may reach its services
  const net = adminKubeConfig().makeApiClient(k8s().NetworkingV1Api);
  const policy = await net.readNamespacedNetworkPolicy({ name: `${anchorName(req.buildId)}-services`, namespace });
  expect(policy.spec?.podSelector?.matchLabels).toEqual({ [LABELS.build]: req.buildId, [LABELS.component]: 'service' });
  expect(policy.spec?.ingress?.[0]._from?.[0].podSelector?.matchLabels).toEqual({ [LABELS.build]: req.buildId });

  // ready once the kubelet (KWOK) reports the pod Ready; idempotent on a retried start
  await expect(followPod(rt, name, (p) => serviceReadiness(p, 'db'))).resolves.toEqual({ ready: true });
  await expect(startService(rt, req)).resolves.toEqual(address);

  // stop deletes the pod and the Service; the supervisor sees the end
  const supervised = followPod(rt, name, serviceEnd);
  await stopService(rt, req, 1000);
  await expect(supervised).resolves.toEqual({});
  await podGone(core, namespace, name);
  await expect(core.readNamespacedService({ name, namespace })).rejects.toMatchObject({ code: 404 });
});

test('without a startup probe: every port checked by the port-probe, for as long as the local runtime waits for ports', async () => {
  const req = request(
    postgres({
      startup_probe: undefined,
      ports: [
        { name: 'http', number: 8080 },
        { name: 'admin', number: 9000 },
      ],
    }),
    'web',
  );
  const address = await startService(rt, req);
  expect(address.primaryPort).toBe('http');
  const pod = await core.readNamespacedPod({ name: serviceObjectName(req), namespace });
  // Two ports: one probe per container is all Kubernetes allows, so the agent checks both.
  expect(pod.spec!.containers.map((c) => c.name)).toEqual([CONTAINERS.service, CONTAINERS.portProbe]);
  expect(pod.spec!.containers[0].startupProbe).toBeUndefined();
  expect(pod.spec!.containers[1].startupProbe).toMatchObject({
    httpGet: { path: '/ready', port: PORT_PROBE_PORT },
    periodSeconds: 1,
    failureThreshold: 60,
  });
  expect(pod.spec!.containers[0].readinessProbe).toBeUndefined();
  await stopService(rt, req, 0);
});

test('a service names its siblings and itself by their Services’ DNS names, an outer step’s service by the address it was given', async () => {
  const buildId = uniqueBuildId();
  const addr = (name: string, host: string, ports: Record<string, number>): ServiceAddress => ({
    name,
    host,
    ports,
    primaryPort: Object.keys(ports)[0],
  });
  const config = postgres({
    params: { DB_URL: 'postgres://((.svc:db.address))/app', OUTER: '((.svc:cache.host))' },
    run: { path: 'web', args: ['--listen', '((.svc:web.address))', '--db-port', '((.svc:db.ports.default))'] },
    ports: [{ name: 'http', number: 8080 }],
  });
  const req: ResolvedServiceRequest = {
    ...request(config, 'web', buildId),
    // the workflow's pre-allocated local addresses for this step's services
    scope: {
      db: addr('db', '127.9.9.1', { default: 5432 }),
      web: addr('web', '127.9.9.2', { http: 8080 }),
      cache: addr('cache', 'cw-svc-cache-0123456789ab.elsewhere.svc', { default: 6379 }),
    },
    siblings: ['db', 'web'],
  };
  await startService(rt, req);
  const db = `${serviceObjectName({ ...req, name: 'db' })}.${namespace}.svc`;
  const pod = await core.readNamespacedPod({ name: serviceObjectName(req), namespace });
  const c = pod.spec!.containers[0];
  expect(c.args).toEqual(['--listen', `${serviceObjectName(req)}.${namespace}.svc:8080`, '--db-port', '5432']);
  expect(c.env).toEqual(
    expect.arrayContaining([
      { name: 'DB_URL', value: `postgres://${db}:5432/app` },
      { name: 'OUTER', value: 'cw-svc-cache-0123456789ab.elsewhere.svc' },
    ]),
  );
  await stopService(rt, req, 0);

  // a ref no service in scope answers: the service fails for good, naming itself, and nothing is created
  const bad: ResolvedServiceRequest = {
    ...req,
    name: 'broken',
    spec: { ...req.spec, name: 'broken', params: { X: '((.svc:db.ports.nope))' } },
    siblings: ['db', 'broken'],
  };
  await expect(startService(rt, bad)).rejects.toMatchObject({
    name: 'ServiceFailed',
    message: expect.stringMatching(
      /^service broken: cannot resolve \(\(\.svc:db\.ports\.nope\)\): services in scope: db \(ports default\)/,
    ),
  });
  await expect(core.readNamespacedPod({ name: serviceObjectName(bad), namespace })).rejects.toMatchObject({ code: 404 });
});
