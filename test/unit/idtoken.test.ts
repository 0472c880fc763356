// Concourse's idtoken var source (atc/creds/idtoken/*_test.go): the config it accepts and
// refuses, the claims and `sub` of each subject_scope (a `/` in a part written %2F), the
// expiry, signatures that verify against the published JWKS (which holds no private field),
// the keys file, the worker's refusals, and the examples of Concourse's id-token docs page.
import type { JsonWebKey } from 'node:crypto';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { CredentialResolver } from '../../activities/creds';
import { tokenSubject, type TokenSubject } from '../../activities/creds/idtoken';
import { StepErrored } from '../../activities/errors';
import { AesGcmPayloadCodec, ensureCodecKeys } from '../../common/codec';
import { codecServer } from '../../common/codec-server';
import { ensureIdTokenKeys, IdTokenIssuer, openIdConfiguration, publicJwks, readIdTokenKeys } from '../../common/idtoken';
import { parseVarRef } from '../../schemas/interpolate';
import { compilePipeline } from '../../schemas/pipeline';
import { compilePlan } from '../../schemas';
import type { VarSourceConfig } from '../../schemas/compiled';
import { CredentialManagerConfig, VarSource } from '../../schemas/var-sources';
import { workerCredentials } from '../../workers/credentials';
import { ID_TOKEN_DOCS_PIPELINES } from '../fixtures/concourse-docs-id-token';
import { verifyJwt } from '../fixtures/jwt';
import { readEnv } from '../../common/config';

const ISSUER = 'https://concourse.test';
let dir: string;
let issuer: IdTokenIssuer;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-idtoken-'));
  issuer = new IdTokenIssuer(ISSUER, path.join(dir, 'keys', 'idtoken-keys.json'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const who: TokenSubject = { team: 'main', pipeline: 'idtoken', instanceVars: { foo: 'bar' }, job: 'testjob' };

/** A token of a var source `config`, as a step's activity resolves ((x:token)). */
async function token(config: Record<string, unknown>, extra: Partial<VarSourceConfig> = {}, pipeline = 'idtoken'): Promise<string> {
  const creds = new CredentialResolver({ team: 'main', redact: true, idtoken: issuer }, pipeline, [
    { name: 'x', type: 'idtoken', config, ...extra },
  ]);
  const found = await creds.lookup(parseVarRef('x:token'));
  if (!found.found) throw new Error('not found');
  return found.value as string;
}

const configError = (config: unknown) => {
  const r = VarSource.safeParse({ name: 'x', type: 'idtoken', config });
  return r.success ? undefined : z.prettifyError(r.error);
};

describe('config', () => {
  test("accepts Concourse's settings, with its defaults", () => {
    expect(
      VarSource.parse({
        name: 'x',
        type: 'idtoken',
        config: { audience: ['testaud'], subject_scope: 'team', expires_in: '15m', algorithm: 'ES256' },
      }),
    ).toEqual({
      name: 'x',
      type: 'idtoken',
      config: { audience: ['testaud'], subject_scope: 'team', expires_in: '15m', algorithm: 'ES256' },
    });
    expect(VarSource.parse({ name: 'x', type: 'idtoken', config: {} }).config).toEqual({
      subject_scope: 'pipeline',
      expires_in: '1h',
      algorithm: 'RS256',
    });
  });

  test('refuses what Concourse refuses, saying which setting', () => {
    expect(configError({ audience: 'invalid' })).toContain('audience must be a list of strings');
    expect(configError({ audience: [1] })).toContain('audience must be a list of strings');
    expect(configError({ subject_scope: 123 })).toContain('subject_scope must be one of team, pipeline, instance, job');
    expect(configError({ subject_scope: 'something' })).toContain('subject_scope must be one of');
    expect(configError({ expires_in: 123 })).toContain('expires_in must be a string');
    expect(configError({ expires_in: '15abc' })).toContain('invalid duration `15abc`');
    expect(configError({ expires_in: '48h' })).toContain('expires_in must be <= 24h0m0s');
    expect(configError({ expires_in: '24h' })).toBeUndefined();
    expect(configError({ algorithm: 123 })).toContain('algorithm must be RS256 or ES256');
    expect(configError({ algorithm: 'HS256' })).toContain('algorithm must be RS256 or ES256');
    expect(configError({ unknown: 'abc' })).toContain('Unrecognized key: "unknown"');
  });

  test('is a var source only, never the cluster-wide manager', () => {
    const r = CredentialManagerConfig.safeParse({ type: 'idtoken', config: {} });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0].message).toContain("idtoken is only a pipeline's var source");
    expect(() => workerCredentials(readEnv({ CAUSEWAY_CREDS: '{type: idtoken, config: {}}' }))).toThrow(/only a pipeline's var source/);
  });

  test('a plan and a pipeline with a bad idtoken source do not compile, with the line', () => {
    const text = `var_sources:\n- {name: t, type: idtoken, config: {expires_in: 25h}}\nplan:\n- task: x\n  config: {platform: linux, run: {path: "true"}}\n`;
    expect(() => compilePlan({ text, file: 'p.yml' })).toThrow(/p\.yml:2:.*expires_in must be <= 24h0m0s/);
  });
});

describe('claims', () => {
  test('default: RS256, sub team/pipeline, iss, iat, exp one hour on, team, pipeline, job, instance_vars, no aud', async () => {
    const before = Math.floor(Date.now() / 1000);
    const { header, claims } = verifyJwt(
      await token({}, { job: 'testjob', instanceVars: { foo: 'bar' } }),
      publicJwks(readIdTokenKeys(issuer.keysFile)),
    );
    expect(header.alg).toBe('RS256');
    expect(claims).toEqual({
      exp: expect.any(Number),
      iat: expect.any(Number),
      instance_vars: { foo: 'bar' },
      iss: ISSUER,
      job: 'testjob',
      pipeline: 'idtoken',
      sub: 'main/idtoken',
      team: 'main',
    });
    expect(claims.iat).toBeGreaterThanOrEqual(before);
    expect((claims.exp as number) - (claims.iat as number)).toBeGreaterThanOrEqual(3599);
    expect((claims.exp as number) - (claims.iat as number)).toBeLessThanOrEqual(3601);
    // Keys in go-jose's order (it marshals a map): sorted.
    expect(Object.keys(claims)).toEqual([...Object.keys(claims)].sort());
  });

  test("the payload is JSON as Go's encoding writes it (go-jose): keys sorted at every level, <, > and & escaped", async () => {
    const t = await token({}, { job: 'j', instanceVars: { b: 1, a: '<x&y>' } });
    const payload = Buffer.from(t.split('.')[1], 'base64url').toString();
    expect(payload).toMatch(
      /^\{"exp":\d+,"iat":\d+,"instance_vars":\{"a":"\\u003cx\\u0026y\\u003e","b":1\},"iss":"https:\/\/concourse.test","job":"j",/,
    );
    expect(Buffer.from(t.split('.')[0], 'base64url').toString()).toMatch(/^\{"alg":"RS256","kid":"\d+"\}$/);
  });

  test('expires_in sets exp; one audience is a string, more a list (go-jose jwt.Audience)', async () => {
    const jwks = publicJwks(readIdTokenKeys(issuer.keysFile));
    const one = verifyJwt(await token({ expires_in: '15m', audience: ['sts.amazonaws.com'] }), jwks).claims;
    expect((one.exp as number) - (one.iat as number)).toBeGreaterThanOrEqual(899);
    expect((one.exp as number) - (one.iat as number)).toBeLessThanOrEqual(901);
    expect(one.aud).toBe('sts.amazonaws.com');
    expect(verifyJwt(await token({ audience: ['a', 'b'] }), jwks).claims.aud).toEqual(['a', 'b']);
    expect(verifyJwt(await token({ audience: [] }), jwks).claims).not.toHaveProperty('aud');
  });

  test('ES256 when asked, verifiable with the EC key of the JWKS', async () => {
    const { header } = verifyJwt(await token({ algorithm: 'ES256' }), publicJwks(readIdTokenKeys(issuer.keysFile)));
    expect(header.alg).toBe('ES256');
    expect(publicJwks(readIdTokenKeys(issuer.keysFile)).keys.find((k) => (k as { kid: string }).kid === header.kid)).toMatchObject({
      kty: 'EC',
      crv: 'P-256',
    });
  });

  test.each([
    ['team', 'main'],
    ['pipeline', 'main/idtoken'],
    ['', 'main/idtoken'],
    ['instance', 'main/idtoken/foo:bar'],
    ['job', 'main/idtoken/foo:bar/testjob'],
  ] as const)('subject_scope %p: sub %s', (scope, sub) => {
    expect(tokenSubject(scope, who)).toBe(sub);
  });

  test('an empty part stays (no instance vars: a double slash), and a / inside a part is %2F', () => {
    expect(tokenSubject('job', { team: 'main', pipeline: 'p', job: 'j' })).toBe('main/p//j');
    expect(
      tokenSubject('job', { team: 'fake/team', pipeline: 'fake/pipeline', instanceVars: { 'fake/foo': 'fake/bar' }, job: 'fake/job' }),
    ).toBe('fake%2Fteam/fake%2Fpipeline/"fake%2Ffoo":"fake%2Fbar"/fake%2Fjob');
  });

  test('a one-off build (no job, no instance vars) names its plan as the pipeline and an empty job', async () => {
    const { claims } = verifyJwt(await token({ subject_scope: 'job' }, {}, 'deploy'), publicJwks(readIdTokenKeys(issuer.keysFile)));
    expect(claims).toMatchObject({ sub: 'main/deploy//', pipeline: 'deploy', job: '' });
    expect(claims).not.toHaveProperty('instance_vars');
  });

  test('a token is fresh at each lookup of a new activity, and redacted from its logs', async () => {
    const creds = new CredentialResolver({ team: 'main', redact: true, idtoken: issuer }, 'p', [
      { name: 'x', type: 'idtoken', config: { algorithm: 'ES256' } },
    ]);
    const found = await creds.lookup(parseVarRef('x:token'));
    expect(found.found && creds.redactMessage(`got ${String(found.value)}`)).toBe('got ((redacted))');
    expect(found.found && found.value).not.toBe(await token({ algorithm: 'ES256' }, {}, 'p'));
  });
});

test("a later activity of the build redacts the tokens the worker gave its earlier ones (a service's supervision, a re-attached task), not other builds'", async () => {
  const resolver = (build: string) =>
    new CredentialResolver(
      { team: 'main', redact: true, idtoken: issuer },
      'p',
      [{ name: 'x', type: 'idtoken', config: { algorithm: 'ES256' } }],
      build,
    );
  // ES256: RS256 signs the same claims (within a second) alike, which would redact any build's.
  const first = await resolver('build-1').lookup(parseVarRef('x:token'));
  const earlier = first.found ? String(first.value) : '';
  const later = resolver('build-1');
  await later.recall(['x:token']);
  expect(later.redactMessage(`started with ${earlier}`)).toBe('started with ((redacted))');
  expect(later.secretTexts()).toContain(earlier);
  const other = resolver('build-2');
  await other.recall(['x:token']);
  expect(other.redactMessage(earlier)).toBe(earlier);
});

describe('refusals', () => {
  test('a var other than token', async () => {
    const creds = new CredentialResolver({ team: 'main', redact: true, idtoken: issuer }, 'p', [
      { name: 'x', type: 'idtoken', config: {} },
    ]);
    await expect(creds.lookup(parseVarRef('x:password'))).rejects.toThrow(/var source `x` is an idtoken, whose only var is `token`/);
    await expect(creds.lookup(parseVarRef('x:password'))).rejects.toBeInstanceOf(StepErrored);
  });

  test('a worker without an issuer names the flag and the env var', async () => {
    const creds = new CredentialResolver({ team: 'main', redact: true }, 'p', [{ name: 'x', type: 'idtoken', config: {} }]);
    const err = creds.lookup(parseVarRef('x:token'));
    await expect(err).rejects.toThrow(/--idtoken-issuer URL \(CAUSEWAY_IDTOKEN_ISSUER\)/);
    await expect(err).rejects.toBeInstanceOf(StepErrored);
  });

  test('the worker validates the issuer URL and wants it with a keys file', () => {
    expect(() => workerCredentials(readEnv({ CAUSEWAY_IDTOKEN_ISSUER: 'ftp://x' }))).toThrow(/http:\/\/ or https:\/\//);
    expect(() => workerCredentials(readEnv({ CAUSEWAY_IDTOKEN_KEYS: '/k.json' }))).toThrow(/give the issuer too/);
    const w = workerCredentials(readEnv({ CAUSEWAY_HOME: dir }), { idtokenIssuer: 'https://ci.example.com/', idtokenKeys: 'k.json' });
    expect(w.idtoken?.issuer).toBe('https://ci.example.com');
    expect(w.idtoken?.keysFile).toBe(path.resolve('k.json'));
    expect(workerCredentials(readEnv({ CAUSEWAY_HOME: dir, CAUSEWAY_IDTOKEN_ISSUER: 'http://127.0.0.1:8234' })).idtoken?.keysFile).toBe(
      path.join(dir, 'idtoken-keys.json'),
    );
  });
});

describe('keys', () => {
  test('made once, 0600, an RSA 2048 and a P-256 key; a second start reads the same', () => {
    const file = path.join(dir, 'once.json');
    const first = ensureIdTokenKeys(file);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(first.map((k) => [k.alg, k.key.asymmetricKeyType, k.key.asymmetricKeyDetails])).toEqual([
      ['RS256', 'rsa', expect.objectContaining({ modulusLength: 2048 })],
      ['ES256', 'ec', expect.objectContaining({ namedCurve: 'prime256v1' })],
    ]);
    expect(ensureIdTokenKeys(file).map((k) => k.kid)).toEqual(first.map((k) => k.kid));
  });

  test('the JWKS holds each public key with kid, alg and use, and no private field', () => {
    const jwks = publicJwks(ensureIdTokenKeys(path.join(dir, 'once.json')));
    expect(jwks.keys).toEqual([
      { kty: 'RSA', n: expect.any(String), e: 'AQAB', kid: expect.stringMatching(/^\d+$/), alg: 'RS256', use: 'sig' },
      {
        kty: 'EC',
        crv: 'P-256',
        x: expect.any(String),
        y: expect.any(String),
        kid: expect.stringMatching(/^\d+$/),
        alg: 'ES256',
        use: 'sig',
      },
    ]);
    for (const k of jwks.keys) for (const field of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(k).not.toHaveProperty(field);
  });

  test('a keys file others can read is refused', () => {
    const file = path.join(dir, 'open.json');
    ensureIdTokenKeys(file);
    fs.chmodSync(file, 0o644);
    expect(() => readIdTokenKeys(file)).toThrow(/readable by group or others \(mode 644\); run `chmod 600/);
  });

  test('a keys file whose key does not fit its alg, or without a key of each, is refused', () => {
    const file = path.join(dir, 'mixed.json');
    const keys = (JSON.parse(fs.readFileSync(path.join(dir, 'once.json'), 'utf8')) as { keys: Record<string, unknown>[] }).keys;
    fs.writeFileSync(file, JSON.stringify({ keys: [{ ...keys[0], alg: 'ES256' }, keys[1]] }), { mode: 0o600 });
    expect(() => readIdTokenKeys(file)).toThrow(/an RS256 key is an RSA key/);
    fs.writeFileSync(file, JSON.stringify({ keys: [keys[1]] }));
    expect(() => readIdTokenKeys(file)).toThrow(/needs a key of each algorithm, RS256 and ES256/);
  });

  test("the discovery document is Concourse's, with the JWKS under the issuer", () => {
    expect(openIdConfiguration('https://ci.example.com/oidc')).toEqual({
      issuer: 'https://ci.example.com/oidc',
      jwks_uri: 'https://ci.example.com/oidc/.well-known/jwks.json',
      claims_supported: ['aud', 'iat', 'iss', 'sub'],
      response_types_supported: ['idtoken'],
      id_token_signing_alg_values_supported: ['RS256', 'ES256'],
      subject_types_supported: ['public'],
    });
  });
});

test.each(['http://127.0.0.1:8234', 'https://ci.example.com/oidc'])(
  'the codec server answers for issuer %s: discovery and JWKS under its path, without a token; the rest still wants one',
  async (url) => {
    const keysFile = path.join(dir, 'served.json');
    const codec = new AesGcmPayloadCodec(ensureCodecKeys(path.join(dir, 'codec-keys.json')));
    const server = codecServer({ codec, token: 'tok', origins: [], idtoken: { issuer: url, keysFile } });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}${new URL(url).pathname.replace(/\/$/, '')}`;
    try {
      const discovery = await fetch(`${base}/.well-known/openid-configuration`);
      expect(discovery.headers.get('content-type')).toBe('application/json');
      expect(await discovery.json()).toMatchObject({ issuer: url, jwks_uri: `${url}/.well-known/jwks.json` });
      const jwks = (await (await fetch(`${base}/.well-known/jwks.json`)).json()) as { keys: JsonWebKey[] };
      // The keys the worker signs with (made by whichever asks first).
      expect(jwks).toEqual(publicJwks(readIdTokenKeys(keysFile)));
      expect(jwks.keys.map((k) => k.alg)).toEqual(['RS256', 'ES256']);
      expect((await fetch(`${base}/.well-known/other`)).status).toBe(401);
      expect((await fetch(`${base}/.well-known/jwks.json`, { method: 'POST' })).status).toBe(401);
    } finally {
      server.close();
    }
  },
);

describe('in a pipeline', () => {
  const text = `var_sources:
- {name: t, type: idtoken, config: {subject_scope: job}}
- {name: d, type: dummy, config: {vars: {a: b}}}
resources:
- {name: r, type: mock, source: {token: ((t:token))}}
jobs:
- name: deploy
  plan:
  - get: r
`;

  test("each job's idtoken sources carry its name and the instance's vars, the pipeline's (for checks) only the vars", () => {
    const config = compilePipeline({ name: 'app', text, file: 'app.yml', instanceVars: { env: 'prod/eu' } });
    expect(config.jobs[0].plan.varSources).toEqual([
      {
        name: 't',
        type: 'idtoken',
        config: { subject_scope: 'job', expires_in: '1h', algorithm: 'RS256' },
        job: 'deploy',
        instanceVars: { env: 'prod/eu' },
      },
      { name: 'd', type: 'dummy', config: { vars: { a: 'b' } } },
    ]);
    expect(config.varSources?.[0]).toEqual({
      name: 't',
      type: 'idtoken',
      config: { subject_scope: 'job', expires_in: '1h', algorithm: 'RS256' },
      instanceVars: { env: 'prod/eu' },
    });
    expect(compilePipeline({ name: 'app', text, file: 'app.yml' }).jobs[0].plan.varSources?.[0]).not.toHaveProperty('instanceVars');
  });

  test("a job's token names the job and the instance, its / escaped in sub", async () => {
    const source = compilePipeline({ name: 'app', text, file: 'app.yml', instanceVars: { env: 'prod/eu' } }).jobs[0].plan.varSources![0];
    const creds = new CredentialResolver({ team: 'main', redact: true, idtoken: issuer }, 'app', [source]);
    const found = await creds.lookup(parseVarRef('t:token'));
    const { claims } = verifyJwt(found.found ? (found.value as string) : '', publicJwks(readIdTokenKeys(issuer.keysFile)));
    expect(claims).toMatchObject({
      sub: 'main/app/env:"prod%2Feu"/deploy',
      job: 'deploy',
      pipeline: 'app',
      instance_vars: { env: 'prod/eu' },
    });
  });
});

test.each(Object.entries(ID_TOKEN_DOCS_PIPELINES))(
  "Concourse's id-token docs example %s compiles, its token left to the worker",
  (name, text) => {
    const config = compilePipeline({ name, text, file: `${name}.yml` });
    const job = config.jobs[0];
    expect(job.plan.varSources).toEqual([expect.objectContaining({ type: 'idtoken', job: job.name })]);
    expect(job.plan.deferredVars?.map((d) => d.ref)).toEqual([expect.stringMatching(/^[a-z]+token:token$/)]);
  },
);
