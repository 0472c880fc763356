// The installation's idtoken signing keys (Concourse's signing_keys table) and what verifiers
// fetch of them. The keys are private JWKs in one file (0600), an RSA 2048 key for RS256 and an
// EC P-256 key for ES256, made on first use: every worker of an installation must read the same
// file, and whatever serves the issuer's /.well-known/ endpoints (the dev stack's codec server)
// publishes its public half.
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, type JsonWebKey, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { goJson } from '../schemas/instance-vars';
import { causewayHome, type Env } from './config';

/** The file `causeway dev up` keeps the keys in, in CAUSEWAY_HOME. */
export const IDTOKEN_KEYS_FILE = 'idtoken-keys.json';
export const OPENID_CONFIGURATION_PATH = '/.well-known/openid-configuration';
export const JWKS_PATH = '/.well-known/jwks.json';

export type IdTokenAlgorithm = 'RS256' | 'ES256';
const ALGORITHMS: IdTokenAlgorithm[] = ['RS256', 'ES256'];

/** An issuer URL as OIDC wants it (https in production; http for a local verifier), without a trailing `/`. */
export const IssuerUrl = z
  .url({ protocol: /^https?$/, error: 'the idtoken issuer is an http:// or https:// URL' })
  .refine((u) => !/[?#]/.test(u), 'the idtoken issuer has no query or fragment')
  .transform((u) => u.replace(/\/+$/, ''));

/**
 * The issuer and keys file the flags (`--idtoken-issuer`, `--idtoken-keys`) or the environment
 * name, the same for a worker and for what serves the issuer's documents; undefined without an issuer.
 */
export function idtokenSettings(
  env: Env,
  flags: { issuer?: string; keys?: string } = {},
): { issuer: string; keysFile: string } | undefined {
  const url = flags.issuer ?? env.CAUSEWAY_IDTOKEN_ISSUER;
  const keys = flags.keys ?? env.CAUSEWAY_IDTOKEN_KEYS;
  if (url === undefined) {
    if (keys !== undefined)
      throw new Error('--idtoken-keys / CAUSEWAY_IDTOKEN_KEYS: give the issuer too (--idtoken-issuer / CAUSEWAY_IDTOKEN_ISSUER)');
    return undefined;
  }
  const issuer = IssuerUrl.safeParse(url);
  if (!issuer.success) throw new Error(`--idtoken-issuer / CAUSEWAY_IDTOKEN_ISSUER ${url}: ${issuer.error.issues[0].message}`);
  return { issuer: issuer.data, keysFile: path.resolve(keys ?? path.join(causewayHome(env), IDTOKEN_KEYS_FILE)) };
}

const PrivateJwk = z
  .looseObject({
    kid: z.string().min(1),
    alg: z.enum(ALGORITHMS),
    kty: z.enum(['RSA', 'EC']),
    d: z.string().min(1),
  })
  .refine((k) => (k.alg === 'RS256') === (k.kty === 'RSA'), 'an RS256 key is an RSA key, an ES256 key an EC (P-256) one');
const KeysFile = z
  .object({ keys: z.array(PrivateJwk) })
  .refine((f) => ALGORITHMS.every((alg) => f.keys.some((k) => k.alg === alg)), 'needs a key of each algorithm, RS256 and ES256');

export interface SigningKey {
  kid: string;
  alg: IdTokenAlgorithm;
  key: KeyObject;
}

// Concourse's key ids are random decimal numbers.
const newKid = () => BigInt.asUintN(63, randomBytes(8).readBigUInt64BE()).toString();

function newJwk(alg: IdTokenAlgorithm): JsonWebKey {
  const { privateKey } =
    alg === 'RS256' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { ...privateKey.export({ format: 'jwk' }), kid: newKid(), alg, use: 'sig' };
}

function parseKeys(text: string, file: string): SigningKey[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not JSON (${(err as Error).message}); expected {"keys": [private JWKs]}`, { cause: err });
  }
  const parsed = KeysFile.safeParse(json);
  if (!parsed.success) throw new Error(`${file}: invalid idtoken signing keys: ${z.prettifyError(parsed.error).replace(/\n\s*/g, ' ')}`);
  return parsed.data.keys.map((jwk) => ({ kid: jwk.kid, alg: jwk.alg, key: createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' }) }));
}

/** Reads the keys, refusing a file others can read: whoever holds them can sign any pipeline's tokens. */
export function readIdTokenKeys(file: string): SigningKey[] {
  const mode = fs.statSync(file).mode & 0o777;
  if (mode & 0o077)
    throw new Error(`${file}: idtoken signing keys readable by group or others (mode ${mode.toString(8)}); run \`chmod 600 ${file}\``);
  return parseKeys(fs.readFileSync(file, 'utf8'), file);
}

/** Creates the keys file (0600, never overwriting one) if it does not exist; returns its keys. */
export function ensureIdTokenKeys(file: string): SigningKey[] {
  if (fs.existsSync(file)) return readIdTokenKeys(file);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  try {
    fs.writeFileSync(file, JSON.stringify({ keys: ALGORITHMS.map(newJwk) }, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // Two workers raced: the other one's file wins.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return readIdTokenKeys(file);
}

/** The JWKS verifiers fetch: each key's public half only, derived from the public key so no private field can slip through. */
export function publicJwks(keys: SigningKey[]): { keys: JsonWebKey[] } {
  return { keys: keys.map((k) => ({ ...createPublicKey(k.key).export({ format: 'jwk' }), kid: k.kid, alg: k.alg, use: 'sig' })) };
}

/** Concourse's OIDC discovery document (atc/api/idtokenserver/openid_discovery.go). */
export function openIdConfiguration(issuer: string) {
  return {
    issuer,
    jwks_uri: `${issuer}${JWKS_PATH}`,
    claims_supported: ['aud', 'iat', 'iss', 'sub'],
    response_types_supported: ['idtoken'],
    id_token_signing_alg_values_supported: ALGORITHMS,
    subject_types_supported: ['public'],
  };
}

const b64url = (data: string | Buffer) => Buffer.from(data).toString('base64url');

/** A compact JWS of `claims`, header (alg, kid) and claims as JSON the way go-jose writes Concourse's (Go's encoding: keys sorted). */
export function signJwt(key: SigningKey, claims: Record<string, unknown>): string {
  const input = `${b64url(goJson({ alg: key.alg, kid: key.kid }))}.${b64url(goJson(claims))}`;
  const signature =
    key.alg === 'RS256'
      ? sign('RSA-SHA256', Buffer.from(input), key.key)
      : sign('SHA256', Buffer.from(input), { key: key.key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64url(signature)}`;
}

/**
 * A worker's issuer: its URL and its keys file, read when a token is first asked for and again
 * when the file changes (an operator rotating the keys needs no restart).
 */
export class IdTokenIssuer {
  private cached?: { stamp: string; keys: SigningKey[] };
  /** the tokens not yet expired that this process issued, by build: see issued() */
  private readonly byBuild = new Map<string, { token: string; expiresAt: number }[]>();

  constructor(
    readonly issuer: string,
    readonly keysFile: string,
  ) {}

  signingKey(alg: IdTokenAlgorithm): SigningKey {
    const stat = fs.statSync(this.keysFile, { throwIfNoEntry: false });
    const stamp = stat ? `${stat.mtimeMs}:${stat.size}` : '';
    if (this.cached?.stamp !== stamp || !stat) {
      const keys = ensureIdTokenKeys(this.keysFile);
      const after = fs.statSync(this.keysFile);
      this.cached = { stamp: `${after.mtimeMs}:${after.size}`, keys };
    }
    return this.cached.keys.find((k) => k.alg === alg)!;
  }

  /** Keeps a token given to a step of `build` until it expires (epoch ms). */
  remember(build: string, token: string, expiresAt: number): void {
    const now = Date.now();
    for (const [id, tokens] of this.byBuild) {
      const live = tokens.filter((t) => t.expiresAt > now);
      if (live.length > 0) this.byBuild.set(id, live);
      else this.byBuild.delete(id);
    }
    this.byBuild.set(build, [...(this.byBuild.get(build) ?? []), { token, expiresAt }]);
  }

  /**
   * The tokens this process gave steps of `build` that have not expired. Every lookup makes a new
   * token, so a later activity (a service's supervision, a task's activity re-attached to it)
   * redacts the ones its process got from these, not from the one its own lookup makes.
   */
  issued(build: string): string[] {
    return (this.byBuild.get(build) ?? []).filter((t) => t.expiresAt > Date.now()).map((t) => t.token);
  }
}
