// Services on the kubernetes runtime, activity by activity (start, probe, supervise, stop), on
// the real node: the service's log comes from the kubelet line by line with byte-offset ids; a
// service that exits before it is ready fails with its real exit status and last lines; an
// image the registry does not have fails with the kubelet's pull error. These were KWOK tests
// that faked the log and patched the pod's status (test/k8s/services.test.ts keeps the objects
// as the API server stores them). Whole builds with services: build.test.ts, cli.test.ts.
import { ServiceFailed } from '../../../activities/errors';
import type { CoreV1Api } from '../../../activities/runtime/kubernetes/client';
import { followPod } from '../../../activities/runtime/kubernetes/pod-watcher';
import { serviceReadiness } from '../../../activities/runtime/kubernetes/pod-status';
import { probeService, startService, stopService, superviseService } from '../../../activities/runtime/kubernetes/service';
import { ServiceLog } from '../../../activities/runtime/kubernetes/service-log';
import { serviceObjectName } from '../../../activities/runtime/kubernetes/service-pod';
import { KubernetesRuntime } from '../../../activities/runtime/kubernetes/runtime';
import type { ResolvedServiceRequest } from '../../../activities/runtime/types';
import type { ServiceLogOffsets, ServiceRef } from '../../../activities/types';
import type { ServiceConfig } from '../../../schemas/compiled';
import type { LogStreamName } from '../../../schemas/messages';
import { adminCore, adminKubeConfig, freshNamespace, testCluster, uniqueBuildId, until } from '../setup/env';

jest.setTimeout(180_000);

let core: CoreV1Api;
let namespace: string;
let rt: KubernetesRuntime;

beforeAll(async () => {
  core = adminCore();
  namespace = await freshNamespace(core, 'node-svc');
  const { images } = testCluster().node!;
  rt = new KubernetesRuntime({
    namespace,
    worker: 'node-svc',
    kubeConfig: adminKubeConfig(),
    agentImage: images.agent,
    graceSeconds: 1,
    logDrainMs: 1000,
  });
});

afterAll(async () => {
  await core?.deleteNamespace({ name: namespace }).catch(() => undefined);
});

/** A service of the node's task image running `script`, ready once port 8080 accepts connections. */
function service(script: string): ServiceConfig {
  const [repository, tag] = testCluster().node!.images.task.split(/:(?=[^:]+$)/);
  return {
    image_resource: { type: 'registry-image', source: { repository, tag } },
    inputs: [],
    params: {},
    run: { path: 'sh', args: ['-c', script] },
    ports: [{ name: 'default', number: 8080 }],
    startup_probe: {
      run: { path: 'python3', args: ['-c', 'import socket; socket.create_connection(("127.0.0.1", 8080), 1)'] },
      failureThreshold: 120,
      periodSeconds: 1,
      timeoutSeconds: 2,
    },
  };
}

function request(config: ServiceConfig, name = 'db'): ResolvedServiceRequest {
  return {
    buildId: uniqueBuildId(),
    runId: 'run-1',
    scopeStepId: 'plan.0',
    runKey: '1',
    name,
    plan: 'svc',
    spec: { name, config, params: {}, inputMapping: {}, gracePeriodMs: 1000 },
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

test('the service’s log goes out line by line, each message id its byte offset; the next activity sends only what is new', async () => {
  const lines = ['first line\n', 'second, longer line\n'];
  const req = request(service('echo first line; echo "second, longer line"; exec python3 -m http.server 8080 >/dev/null 2>&1'));
  const c = collector();
  const started = c.log(req);
  await startService(rt, req, started);
  expect(c.published).toEqual([
    {
      stream: 'causeway',
      text: expect.stringMatching(
        /^service db started: pod cw-svc-db-\w+ behind Service cw-svc-db-\w+\.node-svc-\w+\.svc, ports: default 8080\n$/,
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
  const total = Buffer.byteLength(lines.join(''));
  await until(async () => supervising.offsets.stdout === total, 'the whole log sent', 60_000);
  await stopService(rt, req, 0);
  await expect(supervised).resolves.toEqual({});

  // as JetStream keeps them: one message per id (probing may send a line just as it is closed)
  const out = [...new Map(c.published.filter((m) => m.stream === 'stdout').map((m) => [m.msgId, m])).values()];
  expect(out.map((m) => m.text)).toEqual(lines);
  expect(out.map((m) => m.msgId)).toEqual([
    'run-1/plan.0/1/svc/db/stdout/0',
    `run-1/plan.0/1/svc/db/stdout/${Buffer.byteLength(lines[0])}`,
  ]);
  // Causeway's notes: started, then ready (a later one, such as the log no longer being readable once
  // the pod is deleted without grace, is not what this test is about)
  const notes = c.published.filter((m) => m.stream === 'causeway').slice(0, 2);
  expect(notes.map((m) => [m.msgId, m.text])).toEqual([
    ['run-1/plan.0/1/svc/db/run/note/0', expect.stringMatching(/^service db started/)],
    ['run-1/plan.0/1/svc/db/run/note/1', expect.stringMatching(/^service db is ready/)],
  ]);
});

test('a service that exits before it is ready fails with its exit status and last lines; an image pull error with Kubernetes’ reason', async () => {
  const req = request(service('echo about to fail; echo bye; exit 1'));
  await startService(rt, req);
  // the activity's message ends with the service's last lines, as on the local runtime
  const c = collector();
  const failure = await probeService(rt, req, c.log(req)).catch((err: unknown) => err);
  expect(failure).toBeInstanceOf(ServiceFailed);
  expect((failure as Error).message).toBe(
    'service db exited with status 1 (Error) before it was ready; its last lines:\nabout to fail\nbye',
  );
  expect(c.published.map((m) => m.text)).toEqual(['about to fail\n', 'bye\n', `${(failure as Error).message}\n`]);
  await stopService(rt, req, 0);

  const { registry } = testCluster().node!;
  const bad = request(
    {
      ...service('true'),
      image_resource: { type: 'registry-image', source: { repository: `${registry}/causeway/does-not-exist`, tag: '1' } },
    },
    'bad',
  );
  await startService(rt, bad);
  await expect(followPod(rt, serviceObjectName(bad), (p) => serviceReadiness(p, 'bad'))).resolves.toEqual({
    failed: expect.stringMatching(/^service bad: (ErrImagePull|ImagePullBackOff): .*does-not-exist/),
  });
  await stopService(rt, bad, 0);
});
