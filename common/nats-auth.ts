// How a Causeway process authenticates to NATS. A production NATS: NATS_CREDS (a JWT
// .creds file), NATS_NKEY (an nkey seed file), NATS_NKEY_SEED (the seed itself, for a worker
// pod whose Secret comes as an env var) or NATS_USER/NATS_PASSWORD, and NATS_TLS_CA /
// NATS_TLS_CERT / NATS_TLS_KEY. The embedded stack: the role's nkey seed that `causeway dev up`
// wrote in CAUSEWAY_HOME/nats-auth (0600), so a worker connects as a worker and the CLI as
// the operator. With none of these the connection is anonymous, which the embedded NATS refuses.
import { createPrivateKey, createPublicKey, sign } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { credsAuthenticator, usernamePasswordAuthenticator, type Authenticator, type TlsOptions } from '@nats-io/nats-core';
import { Codec } from '@nats-io/nkeys/lib/codec';
import { z } from 'zod';
import { causewayHome, readEnv } from './config';

/** operator: everything (control workers, uploads); worker: logs, events, registry, transfers; watcher: read only. */
export const NatsRole = z.enum(['operator', 'worker', 'watcher']);
export type NatsRole = z.infer<typeof NatsRole>;

export const NATS_AUTH_DIR = 'nats-auth';
export const nkeySeedFile = (home: string, role: NatsRole) => path.join(home, NATS_AUTH_DIR, `${role}.nk`);

const NatsAuthEnv = z
  .object({
    NATS_CREDS: z.string().min(1).optional(),
    NATS_NKEY: z.string().min(1).optional(),
    /** Kubernetes hands a Secret's file to a non-root uid group-readable (fsGroup), which secret() refuses; env vars are private. */
    NATS_NKEY_SEED: z.string().min(1).optional(),
    NATS_USER: z.string().min(1).optional(),
    NATS_PASSWORD: z.string().min(1).optional(),
    NATS_TLS_CA: z.string().min(1).optional(),
    NATS_TLS_CERT: z.string().min(1).optional(),
    NATS_TLS_KEY: z.string().min(1).optional(),
  })
  .refine((e) => [e.NATS_CREDS, e.NATS_NKEY, e.NATS_NKEY_SEED, e.NATS_USER].filter(Boolean).length <= 1, {
    message: 'set only one of NATS_CREDS, NATS_NKEY, NATS_NKEY_SEED and NATS_USER',
  })
  .refine((e) => !e.NATS_USER === !e.NATS_PASSWORD, { message: 'NATS_USER and NATS_PASSWORD go together' })
  .refine((e) => !e.NATS_TLS_CERT === !e.NATS_TLS_KEY, { message: 'NATS_TLS_CERT and NATS_TLS_KEY go together' });

function secret(file: string, what: string): Uint8Array {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (err) {
    throw new Error(`${what} ${file}: ${(err as Error).message}`, { cause: err });
  }
  if ((stat.mode & 0o077) !== 0) throw new Error(`${what} ${file} is readable by group or others; run \`chmod 600 ${file}\``);
  return fs.readFileSync(file);
}

export interface NatsAuthOptions {
  authenticator?: Authenticator;
  tls?: TlsOptions;
}

// An Ed25519 private key in PKCS#8 DER is this prefix and the 32-byte seed (RFC 8410).
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');

/**
 * nats-core's nkeyAuthenticator with Node's own Ed25519: the same key and signature, where
 * nats-core derives the key pair twice per connect in JavaScript (tweetnacl), 35-110 ms of a
 * CLI command's start on a loaded machine (BENCHMARKS.md, "One-step build latency").
 */
export function nkeyAuthenticator(seed: Uint8Array): Authenticator {
  const { buf, prefix } = Codec.decodeSeed(seed);
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, buf]), format: 'der', type: 'pkcs8' });
  const publicKey = Buffer.from(createPublicKey(key).export({ format: 'jwk' }).x ?? '', 'base64url');
  const nkey = new TextDecoder().decode(Codec.encode(prefix, publicKey));
  return (nonce?: string) => ({ nkey, sig: nonce ? sign(null, Buffer.from(nonce), key).toString('base64') : '' });
}

/** Credentials for a connection in `role`, from the environment first, else the home's seed for it. */
export function natsAuth(role: NatsRole, home?: string, env: NodeJS.ProcessEnv = process.env): NatsAuthOptions {
  const parsed = NatsAuthEnv.safeParse(env);
  if (!parsed.success) throw new Error(`invalid NATS credentials settings: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  const e = parsed.data;
  const tls: TlsOptions | undefined =
    e.NATS_TLS_CA || e.NATS_TLS_CERT
      ? {
          ...(e.NATS_TLS_CA ? { caFile: e.NATS_TLS_CA } : {}),
          ...(e.NATS_TLS_CERT ? { certFile: e.NATS_TLS_CERT, keyFile: e.NATS_TLS_KEY } : {}),
        }
      : undefined;
  let authenticator: Authenticator | undefined;
  if (e.NATS_CREDS) authenticator = credsAuthenticator(secret(e.NATS_CREDS, 'NATS_CREDS'));
  else if (e.NATS_NKEY)
    authenticator = nkeyAuthenticator(new TextEncoder().encode(Buffer.from(secret(e.NATS_NKEY, 'NATS_NKEY')).toString('utf8').trim()));
  else if (e.NATS_NKEY_SEED) authenticator = nkeyAuthenticator(new TextEncoder().encode(e.NATS_NKEY_SEED.trim()));
  else if (e.NATS_USER && e.NATS_PASSWORD) authenticator = usernamePasswordAuthenticator(e.NATS_USER, e.NATS_PASSWORD);
  else {
    const seed = nkeySeedFile(home ?? causewayHome(readEnv(env)), role);
    if (fs.existsSync(seed))
      authenticator = nkeyAuthenticator(new TextEncoder().encode(Buffer.from(secret(seed, 'nkey seed')).toString('utf8').trim()));
  }
  return { ...(authenticator ? { authenticator } : {}), ...(tls ? { tls } : {}) };
}
