// The real node itself: pods pull images from the local registry through the kubelet and run
// real containers, logs come back through the kubelet, CoreDNS resolves Service names and
// kube-proxy carries ClusterIP traffic between pods.
import type { CoreV1Api, V1Container, V1Pod } from '../../../activities/runtime/kubernetes/client';
import { DNS_SERVICE_IP, KUBERNETES_SERVICE_IP } from '../../../cli/dev/k8s/node';
import { adminCore, freshNamespace, testCluster, until } from '../setup/env';

jest.setTimeout(180_000);

let core: CoreV1Api;
let namespace: string;

beforeAll(async () => {
  core = adminCore();
  namespace = await freshNamespace(core, 'node');
});

afterAll(async () => {
  await core?.deleteNamespace({ name: namespace }).catch(() => undefined);
});

function taskImage(): string {
  return testCluster().node!.images.task;
}

function pod(name: string, script: string, container: Partial<V1Container> = {}): V1Pod {
  return {
    metadata: { name, labels: { app: name } },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'main', image: taskImage(), command: ['sh', '-c', script], ...container }],
    },
  };
}

function fetchWithRetry(url: string): string {
  return [
    'import time, urllib.request',
    'for i in range(60):',
    '  try:',
    `    print(urllib.request.urlopen('${url}', timeout=10).read().decode().strip()); break`,
    '  except OSError:',
    '    if i == 59: raise',
    '    time.sleep(0.5)',
  ].join('\n');
}

async function ended(name: string): Promise<V1Pod> {
  return until(
    async () => {
      const p = await core.readNamespacedPod({ name, namespace });
      return p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' ? p : false;
    },
    `end of pod ${name}`,
    120_000,
  );
}

test('a pod pulls its image from the local registry, runs a real container, and its log comes through the kubelet', async () => {
  await core.createNamespacedPod({ namespace, body: pod('hello', 'echo "hello from $(hostname)"; python3 -c "print(6*7)"; exit 3') });
  const p = await ended('hello');
  expect(p.status?.phase).toBe('Failed');
  expect(p.status?.containerStatuses?.[0].state?.terminated).toMatchObject({ exitCode: 3, reason: 'Error' });
  expect(p.status?.podIP).toMatch(/^198\.18\.\d+\.\d+$/);
  const log = await core.readNamespacedPodLog({ name: 'hello', namespace, container: 'main' });
  expect(log).toBe('hello from hello\n42\n');
});

test('CoreDNS answers Service names, and a pod reaches another through its ClusterIP (kube-proxy)', async () => {
  const serve = 'mkdir -p /tmp/srv && echo served > /tmp/srv/index.html && exec python3 -m http.server 8080 -d /tmp/srv';
  await core.createNamespacedPod({
    namespace,
    body: pod('web', serve, { readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 } }),
  });
  const svc = await core.createNamespacedService({
    namespace,
    body: { metadata: { name: 'web' }, spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] } },
  });
  expect(svc.spec?.clusterIP).toMatch(/^198\.19\.\d+\.\d+$/);
  await until(
    async () =>
      (await core.readNamespacedPod({ name: 'web', namespace })).status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    'web ready',
    120_000,
  );
  const script = [
    'cat /etc/resolv.conf | grep nameserver',
    `python3 -c "import socket; print(socket.gethostbyname('kubernetes.default.svc.cluster.local'))"`,
    `python3 -c "import socket; print(socket.gethostbyname('web'))"`,
    // kube-proxy writes the Service's endpoint rule a moment after the pod is Ready (until then its
    // ClusterIP rejects), so the client retries as any caller of a fresh Service would.
    `python3 -c "${fetchWithRetry(`http://web.${namespace}.svc.cluster.local/index.html`)}"`,
  ].join(' && ');
  await core.createNamespacedPod({ namespace, body: pod('client', script) });
  const p = await ended('client');
  const log = await core.readNamespacedPodLog({ name: 'client', namespace, container: 'main' });
  expect({ phase: p.status?.phase, log }).toEqual({
    phase: 'Succeeded',
    log: `nameserver ${DNS_SERVICE_IP}\n${KUBERNETES_SERVICE_IP}\n${svc.spec?.clusterIP}\nserved\n`,
  });
});
