// The `vault` var source against a real Vault: the dev server (in memory, KV v2 at secret/, a
// root token we choose) of the binary scripts/vault/provision.sh builds from the Go module
// proxy. A build reads a secret along Concourse's paths; its task sees the value, its log shows
// ((redacted)). Skipped, saying which command builds Vault, when the binary is not cached.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { REDACTED } from '../../schemas/var-sources';
import { sh, startHarness, waitFor, type Harness } from './harness';

const ROOT = path.resolve(__dirname, '../..');
const PROVISION = 'bash scripts/vault/provision.sh';
const binDir = /CAUSEWAY_VAULT_BIN="(.*)"/.exec(
  execFileSync('bash', ['scripts/vault/provision.sh', '--print-env'], { cwd: ROOT, encoding: 'utf8' }),
)![1];
const VAULT = path.join(binDir, 'vault');
const built = fs.existsSync(VAULT);
if (!built) console.warn(`vault.test.ts skipped: no Vault binary at ${VAULT}; build it with \`${PROVISION}\` (long: see docs/security.md)`);

const TOKEN = 'causeway-test-root';
let h: Harness;
let vault: ChildProcess;
let url: string;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function vaultApi(method: string, apiPath: string, body?: unknown): Promise<Response> {
  return fetch(`${url}/v1/${apiPath}`, {
    method,
    headers: { 'X-Vault-Token': TOKEN, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

beforeAll(async () => {
  if (!built) return;
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  vault = spawn(VAULT, ['server', '-dev', `-dev-root-token-id=${TOKEN}`, `-dev-listen-address=127.0.0.1:${port}`], {
    // Its own HOME: the CLI writes a token helper file there.
    env: { PATH: process.env.PATH ?? '', HOME: fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-vault-')) },
    stdio: 'ignore',
  });
  await waitFor('vault to unseal', async () => (await vaultApi('GET', 'sys/health').catch(() => undefined))?.status === 200);
  h = await startHarness();
});
afterAll(async () => {
  await h?.stop();
  vault?.kill('SIGTERM');
});

(built ? describe : describe.skip)('the vault var source against a real Vault', () => {
  test('a build reads KV v2 along Concourse’s paths; the task sees the values, its log shows them redacted', async () => {
    // The dev server mounts KV v2 at secret/: prefix /secret, team main, pipeline = the plan's name.
    const put = async (p: string, data: Record<string, string>) =>
      expect((await vaultApi('POST', `secret/data/${p}`, { data })).status).toBe(200);
    await put('main/vault-plan/password', { value: 'pw-from-the-pipeline-path' });
    await put('main/db', { user: 'app', pass: 'db-pass-from-the-team-path' });
    const plan = [
      `var_sources:\n- ${JSON.stringify({ name: 'v', type: 'vault', config: { url, client_token: TOKEN, path_prefix: '/secret' } })}`,
      `plan:\n- ${sh('use', 'test "$PW" = pw-from-the-pipeline-path && test "$DB" = db-pass-from-the-team-path && echo "values match: $PW $DB"', { params: { PW: '((v:password))', DB: '((v:db.pass))' } })}`,
    ].join('\n');
    const r = await h.run(plan, { file: 'vault-plan.yml' });
    expect([r.status, r.message]).toEqual(['succeeded', undefined]);
    expect(r.logs.get('plan.0')).toBe(`values match: ${REDACTED} ${REDACTED}\n`);
  });

  test('a ref Vault does not hold errors the build before the first step, naming the paths it tried', async () => {
    const plan = [
      `var_sources:\n- ${JSON.stringify({ name: 'v', type: 'vault', config: { url, client_token: TOKEN, path_prefix: '/secret' } })}`,
      `plan:\n- ${sh('use', 'echo never', { params: { X: '((v:missing))' } })}`,
    ].join('\n');
    const r = await h.run(plan, { file: 'vault-plan.yml' });
    expect(r.status).toBe('errored');
    expect(r.message).toContain('/secret/main/missing');
  });
});
