// Services on the kubernetes runtime against the real apiserver: a pod plus a Service, the
// startup probe as the pod's startupProbe, readiness from the pod's Ready condition (KWOK
// reports it), failures with Kubernetes' reason, the build's NetworkPolicy, stop.
import { k8s, type CoreV1Api } from '../../activities/runtime/kubernetes/client';
import { LABELS, anchorName } from '../../activities/runtime/kubernetes/pod';
import {
  SERVICE_LABEL,
  followPod,
  serviceEnd,
  serviceObjectName,
  serviceReadiness,
  startService,
  stopService,
} from '../../activities/runtime/kubernetes/service';
import { KubernetesRuntime } from '../../activities/runtime/kubernetes/task';
import type { StartServiceRequest } from '../../activities/types';
import type { ServiceConfig } from '../../schemas/compiled';
import { adminCore, adminKubeConfig, freshNamespace, patchPodStatus, podGone, takeOverPod, terminated, uniqueBuildId, waitForPod } from './setup/env';

let core: CoreV1Api;
let namespace: string;
let rt: KubernetesRuntime;

beforeAll(async () => {
  core = adminCore();
  namespace = await freshNamespace(core, 'svc');
  rt = new KubernetesRuntime({ namespace, worker: 'svc-test', kubeConfig: adminKubeConfig(), graceSeconds: 1 });
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

function request(config: ServiceConfig, name = 'db'): StartServiceRequest {
  const buildId = uniqueBuildId();
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
  expect(c.startupProbe).toMatchObject({ exec: { command: ['pg_isready', '-h', '127.0.0.1'] }, failureThreshold: 30, periodSeconds: 1, timeoutSeconds: 1 });
  expect(c.readinessProbe).toBeUndefined();
  expect(pod.spec?.terminationGracePeriodSeconds).toBe(3);
  const anchor = await core.readNamespacedConfigMap({ name: anchorName(req.buildId), namespace });
  expect(pod.metadata?.ownerReferences?.[0].uid).toBe(anchor.metadata?.uid);

  const svc = await core.readNamespacedService({ name, namespace });
  expect(svc.spec?.selector).toEqual({ [SERVICE_LABEL]: name });
  expect(svc.spec?.ports?.map((p) => ({ name: p.name, port: p.port, targetPort: p.targetPort }))).toEqual([{ name: 'default', port: 5432, targetPort: 5432 }]);
  expect(svc.spec?.clusterIP).toMatch(/^10\.96\./);
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

test('without a startup probe: a TCP readiness probe on the primary port', async () => {
  const req = request(postgres({ startup_probe: undefined, ports: [{ name: 'http', number: 8080 }, { name: 'admin', number: 9000 }] }), 'web');
  const address = await startService(rt, req);
  expect(address.primaryPort).toBe('http');
  const pod = await core.readNamespacedPod({ name: serviceObjectName(req), namespace });
  expect(pod.spec!.containers[0].readinessProbe).toMatchObject({ tcpSocket: { port: 8080 }, periodSeconds: 1 });
  expect(pod.spec!.containers[0].startupProbe).toBeUndefined();
  await stopService(rt, req, 0);
});

test('a service that exits before it is ready fails with its status; an image pull error with Kubernetes’ reason', async () => {
  const req = request(postgres());
  await startService(rt, req);
  const name = serviceObjectName(req);
  await waitForPod(core, namespace, name, (p) => !!p.spec?.nodeName, 'scheduling');
  await takeOverPod(core, namespace, name);
  await patchPodStatus(core, namespace, name, {
    phase: 'Running',
    conditions: [{ type: 'Ready', status: 'False' }],
    containerStatuses: [{ name: 'service', image: 'postgres:17', imageID: '', ready: false, restartCount: 0, state: terminated(1) }],
  });
  await expect(followPod(rt, name, (p) => serviceReadiness(p, 'db'))).resolves.toEqual({ failed: expect.stringMatching(/^service db exited with status 1 \(Error\) before it was ready/) });

  const bad = request(postgres({ image_resource: { type: 'registry-image', source: { repository: 'registry.invalid/pg', tag: 'x' } } }), 'bad');
  await startService(rt, bad);
  const badName = serviceObjectName(bad);
  await waitForPod(core, namespace, badName, (p) => !!p.spec?.nodeName, 'scheduling');
  await takeOverPod(core, namespace, badName);
  await patchPodStatus(core, namespace, badName, {
    phase: 'Pending',
    containerStatuses: [{ name: 'service', image: 'registry.invalid/pg:x', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image' } } }],
  });
  await expect(followPod(rt, badName, (p) => serviceReadiness(p, 'bad'))).resolves.toEqual({ failed: 'service bad: ImagePullBackOff: Back-off pulling image' });
});
