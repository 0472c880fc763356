// `causeway dev up` as its own idtoken issuer: a one-off build's ((x:token)), made by the stack's
// worker, verifies as AWS or Vault would verify it, against the discovery document and JWKS its
// codec server serves at the issuer URL, and carries the claims of Concourse's idtoken.
import type { JsonWebKey } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startStackOnFreePorts, stopStack, type StackInfo } from '../../cli/dev/stack';
import { verifyJwt } from '../fixtures/jwt';
import { requireBuiltCli, runCli } from './cli-runner';

jest.setTimeout(300_000);

const PLAN = `
var_sources:
- name: idt
  type: idtoken
  config: {audience: [sts.amazonaws.com], subject_scope: job, expires_in: 15m, algorithm: ES256}
plan:
- task: login
  params: {T: ((idt:token))}
  config:
    platform: linux
    run:
      path: sh
      args: [-c, 'echo "plain: $T"; printf "b64: %s\\n" "$(printf %s "$T" | base64 | tr -d "\\n")"']
`;

let home: string;
let stack: StackInfo;

beforeAll(async () => {
  requireBuiltCli();
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-dev-idtoken-'));
  stack = await startStackOnFreePorts({ home, persistent: false, startWorker: true, log: () => undefined });
}, 180_000);

afterAll(async () => {
  if (home) {
    await stopStack(home);
    fs.rmSync(home, { recursive: true, force: true });
  }
});

test("a build's token verifies against the dev stack's discovery document and JWKS, and names the build", async () => {
  const issuer = stack.codecServer?.url;
  expect(issuer).toBeDefined();
  fs.writeFileSync(path.join(home, 'deploy.yml'), PLAN);
  // The dev stack's, not the test run's (global-setup sets these to its own stack).
  const env = { CAUSEWAY_HOME: home, TEMPORAL_ADDRESS: stack.temporal.address, NATS_URL: stack.nats.url };
  const r = await runCli(['run', 'deploy.yml'], { cwd: home, queue: 'causeway', env });
  expect(r.stderr + r.stdout).toContain('plain: ((redacted))');
  expect(r.code).toBe(0);
  const token = Buffer.from(/b64: (\S+)/.exec(r.stdout + r.stderr)![1], 'base64').toString();

  // What a verifier does: the discovery document at the token's issuer, then its jwks_uri.
  const iss = (JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as { iss: string }).iss;
  expect(iss).toBe(issuer);
  const discovery = (await (await fetch(`${iss}/.well-known/openid-configuration`)).json()) as Record<string, string>;
  expect(discovery).toMatchObject({ issuer, jwks_uri: `${issuer}/.well-known/jwks.json` });
  const jwks = (await (await fetch(discovery.jwks_uri)).json()) as { keys: JsonWebKey[] };
  for (const key of jwks.keys) expect(key).not.toHaveProperty('d');
  const { header, claims } = verifyJwt(token, jwks);
  expect(header.alg).toBe('ES256');

  // A one-off build: its plan's name is the pipeline, it has no job and no instance vars.
  expect(claims).toEqual({
    aud: 'sts.amazonaws.com',
    exp: (claims.iat as number) + 900,
    iat: expect.any(Number),
    iss: issuer,
    job: '',
    pipeline: 'deploy',
    sub: 'main/deploy//',
    team: 'main',
  });
  expect(Math.abs((claims.iat as number) - Date.now() / 1000)).toBeLessThan(120);
  // The keys are the stack's, in its home, private.
  expect(fs.statSync(path.join(home, 'idtoken-keys.json')).mode & 0o777).toBe(0o600);
});
