// deploy/worker's ServiceAccount, Role and RoleBinding applied to a real apiserver, which answers
// for each verb whether that service account's token may use it (SelfSubjectAccessReview): the
// API server alone decides this. A verb missing from the Role fails the steps of
// test/k8s/node/rbac.test.ts, which run real pods with that token; a verb the runtime does not
// need is caught here.
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { k8s, type CoreV1Api } from '../../activities/runtime/kubernetes/client';
import { kubeconfigYaml } from './cluster';
import { adminCore, adminKubeConfig, freshNamespace, testCluster } from './setup/env';

const DEPLOY = path.join(__dirname, '..', '..', 'deploy', 'worker');
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const load = (file: string): any => YAML.parse(fs.readFileSync(path.join(DEPLOY, file), 'utf8'));

let core: CoreV1Api;
let namespace: string;
let token: string;

beforeAll(async () => {
  core = adminCore();
  namespace = await freshNamespace(core, 'rbac');
  const rbac = adminKubeConfig().makeApiClient(k8s().RbacAuthorizationV1Api);
  const sa = load('serviceaccount.yaml');
  await core.createNamespacedServiceAccount({ namespace, body: sa });
  await rbac.createNamespacedRole({ namespace, body: load('role.yaml') });
  await rbac.createNamespacedRoleBinding({ namespace, body: load('rolebinding.yaml') });
  const tr = await core.createNamespacedServiceAccountToken({
    name: sa.metadata.name,
    namespace,
    body: { spec: { expirationSeconds: 3600, audiences: [] } },
  });
  token = tr.status!.token;
});

function workerKubeConfig() {
  const cluster = testCluster();
  const file = path.join(cluster.dir, `worker-${namespace}.kubeconfig`);
  fs.writeFileSync(file, kubeconfigYaml(cluster.server, cluster.caFile, { token }, 'worker'));
  return file;
}

test('and no more than that: the worker cannot list or watch secrets, or reach other namespaces', async () => {
  const kc = new (k8s().KubeConfig)();
  kc.loadFromFile(workerKubeConfig());
  const auth = kc.makeApiClient(k8s().AuthorizationV1Api);
  const can = async (verb: string, resource: string, ns = namespace, subresource?: string) =>
    (await auth.createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: { namespace: ns, verb, resource, subresource } } } }))
      .status?.allowed;
  expect(await can('create', 'pods')).toBe(true);
  expect(await can('create', 'services')).toBe(true);
  expect(await can('create', 'networkpolicies', namespace)).toBe(false); // group-qualified below
  expect(
    (
      await auth.createSelfSubjectAccessReview({
        body: { spec: { resourceAttributes: { namespace, verb: 'create', group: 'networking.k8s.io', resource: 'networkpolicies' } } },
      })
    ).status?.allowed,
  ).toBe(true);
  expect(await can('update', 'services')).toBe(false);
  expect(await can('watch', 'pods')).toBe(true);
  expect(await can('list', 'pods')).toBe(true); // the pod informer, label-selected
  expect(await can('list', 'configmaps')).toBe(true); // the reconciler's pass over anchors
  expect(await can('update', 'pods')).toBe(false);
  expect(await can('get', 'pods', namespace, 'log')).toBe(true);
  // get by name (a build's token, after a restart) adds nothing to creating pods, which can
  // mount any Secret here; listing or watching them all stays forbidden
  expect(await can('get', 'secrets')).toBe(true);
  expect(await can('list', 'secrets')).toBe(false);
  expect(await can('watch', 'secrets')).toBe(false);
  expect(await can('update', 'secrets')).toBe(false);
  expect(await can('create', 'pods', 'default')).toBe(false);
  expect(await can('create', 'pods', namespace, 'exec')).toBe(false);
});
