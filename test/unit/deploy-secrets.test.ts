// deploy/ carries the payload codec's keys and the NATS roles' credentials as Secrets: the
// worker reads its NATS password and the codec keys from them, the NATS server its users'
// passwords, and the server's users and permissions are the embedded stack's (generated).
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { deployAuthorizationConfig, DEPLOY_PASSWORD_VARS } from '../../cli/dev/nats-auth';

const DEPLOY = path.join(__dirname, '..', '..', 'deploy');
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const load = (file: string): any => YAML.parse(fs.readFileSync(path.join(DEPLOY, file), 'utf8'));
type Env = { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } };
const envOf = (manifest: { spec: { template: { spec: { containers: { env: Env[] }[] } } } }) =>
  Object.fromEntries(manifest.spec.template.spec.containers[0].env.map((e) => [e.name, e.valueFrom?.secretKeyRef ?? e.value]));

test('NATS users and permissions in deploy/ are the embedded stack’s (regenerate: deployAuthorizationConfig)', () => {
  const cm = load('nats/configmap.yaml');
  expect(cm.data['auth.conf']).toBe(deployAuthorizationConfig());
  expect(cm.data['nats.conf']).toContain('include ./auth.conf');
});

test('the NATS server reads each role’s password from the causeway-nats Secret', () => {
  const env = envOf(load('nats/statefulset.yaml'));
  for (const [role, variable] of Object.entries(DEPLOY_PASSWORD_VARS))
    expect(env[variable]).toEqual({ name: 'causeway-nats', key: `${role}-password` });
});

test('the worker connects as the worker role and gets the codec keys from Secrets', () => {
  const env = envOf(load('worker/deployment.yaml'));
  expect(env.NATS_USER).toBe('worker');
  expect(env.NATS_PASSWORD).toEqual({ name: 'causeway-nats', key: 'worker-password' });
  expect(env.CAUSEWAY_CODEC_KEY).toEqual({ name: 'causeway-codec', key: 'keys.json' });
});
