// The `kubernetes` credential manager against a real kube-apiserver: Concourse's lookup paths
// (`<prefix><team>/<pipeline>.<name>`, then `<prefix><team>/<name>`), a Secret's `value` key or
// its whole map, fields, a missing var, one GET per path tried, and the values tracked for redaction.
import { randomUUID } from 'node:crypto';
import { CredentialResolver } from '../../activities/creds';
import { KubernetesStore } from '../../activities/creds/kubernetes';
import type { CoreV1Api } from '../../activities/runtime/kubernetes/client';
import { parseVarRef } from '../../schemas/interpolate';
import { adminCore, adminKubeConfig, testCluster } from './setup/env';

let core: CoreV1Api;
const prefix = `cw-creds-${randomUUID().slice(0, 6)}-`;
const namespace = `${prefix}main`;

beforeAll(async () => {
  core = adminCore();
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  const secret = (name: string, data: Record<string, string>) =>
    core.createNamespacedSecret({ namespace, body: { metadata: { name }, stringData: data } });
  await secret('app.password', { value: 'pipeline-pw' });
  await secret('password', { value: 'team-pw' });
  await secret('db', { user: 'app-user', pass: 'db-pass-123' });
});
afterAll(async () => {
  await core.deleteNamespace({ name: namespace }).catch(() => undefined);
});

test('looks up <prefix><team>/<pipeline>.<name>, then <prefix><team>/<name>, as Concourse', async () => {
  const store = new KubernetesStore({ namespace_prefix: prefix, kubeConfig: adminKubeConfig() });
  const app = new CredentialResolver({ team: 'main', redact: true, cluster: store }, 'app');
  const other = new CredentialResolver({ team: 'main', redact: true, cluster: store }, 'other');
  expect((await app.interpolate('((password))')).value).toBe('pipeline-pw');
  expect((await other.interpolate('((password))')).value).toBe('team-pw');
  // A Secret without a `value` key is a map; a field of it is reachable.
  expect((await app.interpolate({ u: '((db.user))', whole: '((db))' })).value).toEqual({
    u: 'app-user',
    whole: { user: 'app-user', pass: 'db-pass-123' },
  });
  // The whole var is redacted, whichever field was used.
  expect(app.redactor.text('app-user db-pass-123 pipeline-pw')).toBe('((redacted)) ((redacted)) ((redacted))');
  const gets = store.gets;
  const missing = await app.interpolate('((nope))');
  expect(missing.missing.map((r) => r.raw)).toEqual(['nope']);
  expect(store.gets - gets).toBe(2);
  expect(app.explain(parseVarRef('nope'))).toBe(
    `not found in kubernetes (namespace ${prefix}<team>) at ${namespace}/app.nope, ${namespace}/nope`,
  );
});

test('a var source with a fixed namespace (the worker’s own) looks there for every team', async () => {
  const creds = new CredentialResolver({ team: 'other-team', redact: true }, 'app', [
    { name: 'k8s', type: 'kubernetes', config: { namespace, kubeconfig: testCluster().kubeconfig } },
  ]);
  expect((await creds.interpolate('((k8s:password))')).value).toBe('pipeline-pw');
});

test('a lookup path that is not <namespace>/<secret> is an error, not a missing var', async () => {
  const store = new KubernetesStore({ namespace_prefix: prefix, kubeConfig: adminKubeConfig() });
  await expect(store.get('bad/path/x')).rejects.toThrow('unable to split kubernetes secret path');
});
