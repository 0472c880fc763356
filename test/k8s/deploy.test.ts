// Every manifest under deploy/ is accepted by a real kube-apiserver (server-side dry run:
// full validation and defaulting of Deployments, StatefulSets, Services, RBAC...), after the
// transformations deploy/kustomization.yaml asks for (namespace, labels), so a typo in a
// field name or a wrong type fails CI rather than a user's `kubectl apply -k deploy/`.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { k8s } from '../../activities/runtime/kubernetes/client';
import { adminKubeConfig } from './setup/env';

const DEPLOY = path.join(__dirname, '..', '..', 'deploy');

interface Kustomization {
  namespace?: string;
  resources: string[];
  labels?: { pairs: Record<string, string> }[];
}

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

function load(dir = DEPLOY): { kustomization: Kustomization; objects: Manifest[] } {
  const kustomization = YAML.parse(fs.readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8')) as Kustomization;
  const objects: Manifest[] = [];
  for (const file of kustomization.resources) {
    const at = path.join(dir, file);
    // a directory is a kustomization of its own (deploy/worker)
    if (fs.statSync(at).isDirectory()) {
      objects.push(...load(at).objects);
      continue;
    }
    for (const doc of YAML.parseAllDocuments(fs.readFileSync(at, 'utf8'))) {
      if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0].message}`);
      const obj = doc.toJSON() as Manifest | null;
      if (obj) objects.push(obj);
    }
  }
  return { kustomization, objects };
}

/** `kubectl kustomize deploy/` when kubectl is installed: the real kustomize's output. */
function kustomized(): Manifest[] | undefined {
  const run = spawnSync('kubectl', ['kustomize', DEPLOY], { encoding: 'utf8' });
  if (run.error) return undefined; // no kubectl here
  if (run.status !== 0) throw new Error(`kubectl kustomize deploy/ failed: ${run.stderr}`);
  return YAML.parseAllDocuments(run.stdout).map((d) => d.toJSON() as Manifest);
}

const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding']);

test('kustomization resources exist and every manifest passes the apiserver’s validation', async () => {
  const { kustomization, objects } = load();
  expect(kustomization.namespace).toBe('causeway');
  expect(objects.map((o) => o.kind).sort()).toEqual(
    ['ConfigMap', 'Deployment', 'Namespace', 'Role', 'RoleBinding', 'Service', 'Service', 'ServiceAccount', 'StatefulSet'].sort(),
  );
  const api = k8s().KubernetesObjectApi.makeApiClient(adminKubeConfig());
  const labels = Object.assign({}, ...(kustomization.labels ?? []).map((l) => l.pairs)) as Record<string, string>;
  // kustomize's own output when kubectl is here; else the same transformations by hand
  const prepared =
    kustomized() ??
    objects.map((o) => ({
      ...o,
      metadata: {
        ...o.metadata,
        labels: { ...o.metadata.labels, ...labels },
        ...(CLUSTER_SCOPED.has(o.kind) ? {} : { namespace: kustomization.namespace }),
      },
    }));
  expect(prepared.map((o) => o.kind).sort()).toEqual(objects.map((o) => o.kind).sort());
  for (const o of prepared) {
    expect(o.metadata.labels).toMatchObject(labels);
    if (!CLUSTER_SCOPED.has(o.kind)) expect(o.metadata.namespace).toBe('causeway');
  }
  // The namespace for real (dry-run objects need it to exist), everything else dry-run.
  for (const ns of prepared.filter((o) => o.kind === 'Namespace')) await api.create(ns);
  const refused: string[] = [];
  for (const o of prepared.filter((p) => p.kind !== 'Namespace')) {
    try {
      await api.create(o, undefined, 'All');
    } catch (err) {
      refused.push(`${o.kind}/${o.metadata.name}: ${(err as { body?: string }).body ?? (err as Error).message}`);
    }
  }
  expect(refused).toEqual([]);

  // and the dry run does validate: the same Deployment with a broken field is refused
  const deployment = prepared.find((o) => o.kind === 'Deployment') as Manifest & { spec: { replicas: unknown } };
  await expect(api.create({ ...deployment, spec: { ...deployment.spec, replicas: -1 } }, undefined, 'All')).rejects.toMatchObject({
    code: 422,
  });
});

test('the worker Deployment runs as the ServiceAccount the Role is bound to', () => {
  const { objects } = load();
  const find = (kind: string) => objects.find((o) => o.kind === kind)!;
  const deployment = find('Deployment') as Manifest & { spec: { template: { spec: { serviceAccountName: string } } } };
  const binding = find('RoleBinding') as Manifest & { roleRef: { name: string }; subjects: { kind: string; name: string }[] };
  expect(deployment.spec.template.spec.serviceAccountName).toBe(find('ServiceAccount').metadata.name);
  expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: find('ServiceAccount').metadata.name }]);
  expect(binding.roleRef.name).toBe(find('Role').metadata.name);
});
