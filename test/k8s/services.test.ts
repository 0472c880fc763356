// Services on the kubernetes runtime against the real apiserver: a pod plus a Service, the
// startup probe as the pod's startupProbe, readiness from the pod's Ready condition (KWOK
// reports it), failures with Kubernetes' reason and the service's last lines, its log through
// the Log API (KWOK serves FAKE_TASK_LOG for it), ((.svc:...)) refs to its siblings, the
// build's NetworkPolicy, stop.
import { ServiceFailed } from '../../activities/errors';
import type { ServiceAddress } from '../../common/services';
import { k8s, type CoreV1Api } from '../../activities/runtime/kubernetes/client';
import { CONTAINERS, LABELS, anchorName } from '../../activities/runtime/kubernetes/pod';
import { followPod } from '../../activities/runtime/kubernetes/pod-watcher';
import { probeService, startService, stopService, superviseService } from '../../activities/runtime/kubernetes/service';
import { ServiceLog } from '../../activities/runtime/kubernetes/service-log';
import { PORT_PROBE_PORT, SERVICE_LABEL, serviceObjectName } from '../../activities/runtime/kubernetes/service-pod';
import { serviceEnd, serviceReadiness } from '../../activities/runtime/kubernetes/pod-status';
import { KubernetesRuntime } from '../../activities/runtime/kubernetes/runtime';
import type { ResolvedServiceRequest } from '../../activities/runtime/types';
import type { ServiceLogOffsets, ServiceRef } from '../../activities/types';
import type { LogStreamName } from '../../schemas/messages';
import type { ServiceConfig } from '../../schemas/compiled';
import { FAKE_TASK_LOG } from './cluster';
import {
  adminCore,
  adminKubeConfig,
  freshNamespace,
  patchPodStatus,
  podGone,
  takeOverPod,
  terminated,
  uniqueBuildId,
  until,
  waitForPod,
} from './setup/env';

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

/** What a ServiceLog publishes, in order, instead of NATS. */
function collector(): {
  published: { stream: LogStreamName; text: string; msgId: string }[];
  log: (ref: ServiceRef, offsets?: ServiceLogOffsets) => ServiceLog;
} {
  const published: { stream: LogStreamName; text: string; msgId: string }[] = [];
  return {
    published,
    log: (ref, offsets) =>
      new ServiceLog(
        rt,
        ref,
        async (stream, data, msgId) => void published.push({ stream, text: Buffer.from(data).toString('utf8'), msgId }),
        offsets,
      ),
  };
}

const FAKE_LINES = FAKE_TASK_LOG.map((l) => `${l}\n`);

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

test('the service’s log goes out line by line, each message id its byte offset; the next activity sends only what is new', async () => {
  const req = request(postgres());
  const c = collector();
  const started = c.log(req);
  await startService(rt, req, started);
  expect(c.published).toEqual([
    {
      stream: 'causeway',
      text: expect.stringMatching(
        /^service db started: pod cw-svc-db-\w+ behind Service cw-svc-db-\w+\.svc-\w+\.svc, ports: default 5432\n$/,
      ),
      msgId: 'run-1/plan.0/1/svc/db/run/note/0',
    },
  ]);

  // probing follows the log from the container's start; it may have read some of it, or all, when the pod is Ready
  const probing = c.log(req, started.offsets);
  await expect(probeService(rt, req, probing)).resolves.toBe('ready');
  probing.close();
  // superviseService reads the log from the start again and sends from where probing left off
  const supervising = c.log(req, probing.offsets);
  const supervised = superviseService(rt, req, supervising);
  // (in a build the step runs meanwhile; stopping at once could delete the pod before its log is read)
  await until(async () => supervising.offsets.stdout === Buffer.byteLength(FAKE_LINES.join('')), 'the whole log sent');
  await stopService(rt, req, 0);
  await expect(supervised).resolves.toEqual({});

  // as JetStream keeps them: one message per id (probing may send a line just as it is closed)
  const lines = [...new Map(c.published.filter((m) => m.stream === 'stdout').map((m) => [m.msgId, m])).values()];
  expect(lines.map((m) => m.text)).toEqual(FAKE_LINES);
  expect(lines.map((m) => m.msgId)).toEqual([
    'run-1/plan.0/1/svc/db/stdout/0',
    `run-1/plan.0/1/svc/db/stdout/${Buffer.byteLength(FAKE_LINES[0])}`,
  ]);
  expect(supervising.offsets.stdout).toBe(Buffer.byteLength(FAKE_LINES.join('')));
  // KWOK answers a follow of the probing log with 404 when it stays open a second (as it does
  // now that readiness waits for the Service to route): a note of the fake kubelet, not checked here.
  const notes = c.published.filter((m) => m.stream === 'causeway' && !m.text.startsWith("the service's log is not available"));
  expect(notes.map((m) => m.msgId)).toEqual(['run-1/plan.0/1/svc/db/run/note/0', 'run-1/plan.0/1/svc/db/run/note/1']);
  expect(c.published.find((m) => m.msgId.endsWith('note/1'))?.text).toMatch(/^service db is ready/);
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
  // the activity's message ends with the service's last lines, as on the local runtime
  const c = collector();
  const failure = await probeService(rt, req, c.log(req)).catch((err: unknown) => err);
  expect(failure).toBeInstanceOf(ServiceFailed);
  expect((failure as Error).message).toBe(
    `service db exited with status 1 (Error) before it was ready; its last lines:\n${FAKE_TASK_LOG.join('\n')}`,
  );
  expect(c.published.map((m) => m.text)).toEqual([...FAKE_LINES, `${(failure as Error).message}\n`]);

  const bad = request(
    postgres({ image_resource: { type: 'registry-image', source: { repository: 'registry.invalid/pg', tag: 'x' } } }),
    'bad',
  );
  await startService(rt, bad);
  const badName = serviceObjectName(bad);
  await waitForPod(core, namespace, badName, (p) => !!p.spec?.nodeName, 'scheduling');
  await takeOverPod(core, namespace, badName);
  await patchPodStatus(core, namespace, badName, {
    phase: 'Pending',
    containerStatuses: [
      {
        name: 'service',
        image: 'registry.invalid/pg:x',
        imageID: '',
        ready: false,
        restartCount: 0,
        state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image' } },
      },
    ],
  });
  await expect(followPod(rt, badName, (p) => serviceReadiness(p, 'bad'))).resolves.toEqual({
    failed: 'service bad: ImagePullBackOff: Back-off pulling image',
  });
});
