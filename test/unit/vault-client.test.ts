// The vault manager's KV v2 requests, against a local HTTP server that answers as Vault's API
// documents (GET /v1/<mount>/data/<path>, X-Vault-Token, 404 for a missing secret). Not a real
// Vault: scripts/vault/provision.sh builds one from the Go module proxy, which did not finish
// on the shared 2-core machine in the session that wrote this (docs/security.md).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { CredentialResolver } from '../../activities/creds';
import { VaultStore } from '../../activities/creds/vault';

const KV: Record<string, Record<string, unknown>> = {
  '/v1/concourse/data/main/app/password': { value: 'pw-from-pipeline' },
  '/v1/concourse/data/main/db': { user: 'app', pass: 'db-pass-1' },
  '/v1/concourse/data/shared/ca': { value: 'shared-ca' },
};
const seen: { url: string; token?: string; ns?: string }[] = [];
let server: http.Server;
let url: string;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', token: req.headers['x-vault-token'] as string, ns: req.headers['x-vault-namespace'] as string });
    if (req.headers['x-vault-token'] !== 'root-token') {
      res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: ['permission denied'] }));
      return;
    }
    const data = KV[req.url ?? ''];
    if (!data) res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [] }));
    else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ data: { data, metadata: { version: 1 } } }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

test('reads KV v2 along Concourse’s paths with the token, `value` key or the whole map', async () => {
  const store = new VaultStore({ url, client_token: 'root-token', path_prefix: '/concourse', shared_path: 'shared', namespace: 'team-a' });
  const creds = new CredentialResolver({ team: 'main', redact: true, cluster: store }, 'app');
  const r = await creds.interpolate({ pw: '((password))', user: '((db.user))', ca: '((ca))', none: '((nope))' });
  expect(r.value).toEqual({ pw: 'pw-from-pipeline', user: 'app', ca: 'shared-ca', none: '((nope))' });
  expect(r.missing.map((m) => m.raw)).toEqual(['nope']);
  expect(seen.every((s) => s.token === 'root-token' && s.ns === 'team-a')).toBe(true);
  expect(seen.map((s) => s.url)).toContain('/v1/concourse/data/main/app/db');
  expect(creds.redactor.text('app db-pass-1')).toBe('((redacted)) ((redacted))');
});

test('a refused token is an error naming the path, not a missing var', async () => {
  const store = new VaultStore({ url, client_token: 'wrong', path_prefix: '/concourse' });
  await expect(store.get('/concourse/main/app/password')).rejects.toThrow(
    'vault: GET /v1/concourse/data/main/app/password answered 403: permission denied',
  );
});
