// The payload codec: every payload Temporal stores (workflow input, activity arguments and
// results, query results, failure details) is AES-256-GCM ciphertext under a key named by id,
// so keys rotate: new payloads use the current key, old ones still decrypt with theirs.
// Loadable without @temporalio/worker (the CLI lazy-loads that).
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { type DataConverter, defaultPayloadConverter, type LoadedDataConverter, type Payload, type PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { z } from 'zod';
import { causewayHome, readEnv, type Env } from './config';
import { failureConverter } from './failure-converter';

export const ENCODING_ENCRYPTED = 'binary/encrypted';
const METADATA_ENCODING = 'encoding';
const METADATA_KEY_ID = 'encryption-key-id';
const KEY_BYTES = 32; // AES-256
const IV_BYTES = 12; // GCM's standard nonce
const TAG_BYTES = 16;
/** The file `causeway dev up` generates in CAUSEWAY_HOME when no key is configured. */
export const CODEC_KEYS_FILE = 'codec-keys.json';

const KeyId = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'a key id is 1-64 letters, digits, ".", "_" or "-"');
const KeyMaterial = z
  .string()
  .refine(
    (s) => /^[A-Za-z0-9+/]+={0,2}$/.test(s) && Buffer.from(s, 'base64').length === KEY_BYTES,
    `a key is ${KEY_BYTES} random bytes in base64 (openssl rand -base64 ${KEY_BYTES})`,
  );

/** `{"current": "k2", "keys": {"k1": "<base64>", "k2": "<base64>"}}`: encrypt with current, decrypt with any. */
export const CodecKeysSchema = z
  .object({ current: KeyId, keys: z.record(KeyId, KeyMaterial) })
  .refine((k) => k.current in k.keys, { message: '"current" must name one of "keys"', path: ['current'] });
export type CodecKeys = z.infer<typeof CodecKeysSchema>;

function parseKeys(text: string, where: string): CodecKeys {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${where}: not JSON (${(err as Error).message}); expected {"current": "ID", "keys": {"ID": "<32 bytes base64>"}}`, {
      cause: err,
    });
  }
  const parsed = CodecKeysSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(top)'}: ${i.message}`).join('\n');
    throw new Error(`${where}: invalid payload codec keys:\n${problems}`);
  }
  return parsed.data;
}

/** Reads a keys file, refusing one that others can read: the key is every secret in history. */
export function readCodecKeys(file: string): CodecKeys {
  const mode = fs.statSync(file).mode & 0o077;
  if (mode !== 0)
    throw new Error(
      `${file}: readable by group or others (mode ${(fs.statSync(file).mode & 0o777).toString(8)}); run \`chmod 600 ${file}\``,
    );
  return parseKeys(fs.readFileSync(file, 'utf8'), file);
}

/**
 * The keys this process uses: CAUSEWAY_CODEC_KEY (inline JSON, e.g. from a Kubernetes Secret),
 * else the file CAUSEWAY_CODEC_KEYS, else CAUSEWAY_HOME/codec-keys.json when it exists.
 * Undefined when none is configured: payloads then travel in clear (say so where it matters).
 */
export function loadCodecKeys(opts: { home?: string; env?: Env } = {}): CodecKeys | undefined {
  const env = opts.env ?? readEnv();
  if (env.CAUSEWAY_CODEC_KEY) return parseKeys(env.CAUSEWAY_CODEC_KEY, 'CAUSEWAY_CODEC_KEY');
  if (env.CAUSEWAY_CODEC_KEYS) return readCodecKeys(env.CAUSEWAY_CODEC_KEYS);
  const file = path.join(opts.home ?? causewayHome(env), CODEC_KEYS_FILE);
  return fs.existsSync(file) ? readCodecKeys(file) : undefined;
}

function newKeyId(): string {
  return `k${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${randomBytes(3).toString('hex')}`;
}

/** Creates the keys file (0600, never overwriting one) if it does not exist; returns its keys. */
export function ensureCodecKeys(file: string): CodecKeys {
  if (fs.existsSync(file)) return readCodecKeys(file);
  const id = newKeyId();
  const keys: CodecKeys = { current: id, keys: { [id]: randomBytes(KEY_BYTES).toString('base64') } };
  fs.mkdirSync(path.dirname(file), { recursive: true });
  try {
    fs.writeFileSync(file, JSON.stringify(keys, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // Two starters raced: the other one's file wins.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readCodecKeys(file);
    throw err;
  }
  return keys;
}

/** Adds a new key and makes it current; old keys stay so old histories still decrypt. */
export function rotateCodecKeys(file: string): CodecKeys {
  const keys = readCodecKeys(file);
  const id = newKeyId();
  const next: CodecKeys = { current: id, keys: { ...keys.keys, [id]: randomBytes(KEY_BYTES).toString('base64') } };
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(next, null, 2) + '\n', { mode: 0o600 });
  fs.renameSync(`${file}.tmp`, file);
  return next;
}

const utf8 = (s: string) => new TextEncoder().encode(s);
const fromUtf8 = (b: Uint8Array | null | undefined) => (b ? new TextDecoder().decode(b) : undefined);

export class AesGcmPayloadCodec implements PayloadCodec {
  private readonly keys: Map<string, Buffer>;
  private readonly current: string;

  constructor(keys: CodecKeys) {
    this.keys = new Map(Object.entries(keys.keys).map(([id, k]) => [id, Buffer.from(k, 'base64')]));
    this.current = keys.current;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const key = this.keys.get(this.current)!;
    return payloads.map((payload) => {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      // The key id is authenticated, so a payload cannot be relabelled to another key.
      cipher.setAAD(utf8(this.current));
      const plain = temporal.api.common.v1.Payload.encode(payload).finish();
      const data = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return { metadata: { [METADATA_ENCODING]: utf8(ENCODING_ENCRYPTED), [METADATA_KEY_ID]: utf8(this.current) }, data };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      // Payloads written before the codec was configured stay readable.
      if (fromUtf8(payload.metadata?.[METADATA_ENCODING]) !== ENCODING_ENCRYPTED) return payload;
      const id = fromUtf8(payload.metadata?.[METADATA_KEY_ID]) ?? '';
      const key = this.keys.get(id);
      if (!key)
        throw new Error(
          `payload encrypted with codec key "${id}", which is not among the configured keys (${[...this.keys.keys()].join(', ')}); add it to the keys file`,
        );
      const data = Buffer.from(payload.data ?? new Uint8Array());
      if (data.length < IV_BYTES + TAG_BYTES) throw new Error(`encrypted payload of ${data.length} bytes is too short to be one`);
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
      decipher.setAAD(utf8(id));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      const plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
      return temporal.api.common.v1.Payload.decode(plain);
    });
  }
}

/**
 * The data converter of every Causeway client, worker and replay: the codec when keys are
 * configured, and failure messages and stack traces moved into the (encrypted) payload.
 */
export function causewayDataConverter(keys: CodecKeys | undefined): DataConverter {
  return {
    payloadCodecs: keys ? [new AesGcmPayloadCodec(keys)] : [],
    failureConverterPath: FAILURE_CONVERTER_PATH,
  };
}

/**
 * The same for a client, loaded: the failure converter imported rather than required by its path
 * at connect, which loads a second copy of @temporalio/common beside the CLI's bundle.
 */
export function causewayClientDataConverter(keys: CodecKeys | undefined): LoadedDataConverter {
  return {
    payloadConverter: defaultPayloadConverter,
    failureConverter,
    payloadCodecs: keys ? [new AesGcmPayloadCodec(keys)] : [],
  };
}

/** Also given to bundleWorkflowCode, so a prebuilt bundle encodes failures the same way. */
export const FAILURE_CONVERTER_PATH = require.resolve('./failure-converter');

/** The codec server's token in CAUSEWAY_HOME (0600), made on first use. */
export const CODEC_TOKEN_FILE = 'codec-token';

/** Reads a secret file, or creates it (0600, random) when `create` and it is missing. */
export function secretFile(file: string, create: boolean): string {
  if (!fs.existsSync(file) && create) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    try {
      fs.writeFileSync(file, randomBytes(24).toString('base64url') + '\n', { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  if ((fs.statSync(file).mode & 0o077) !== 0) throw new Error(`${file}: readable by group or others; run \`chmod 600 ${file}\``);
  return fs.readFileSync(file, 'utf8').trim();
}
