// How every Causeway client and worker reaches Temporal: TLS, mTLS and API keys from the
// environment variables the Temporal CLI and SDKs read (docs.temporal.io, "Environment
// configuration"), so one set of variables serves `temporal` and `causeway` alike.
// Loadable without @temporalio/worker: the result fits Connection and NativeConnection both.
import fs from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow';
import { z } from 'zod';
import { causewayClientDataConverter, loadCodecKeys } from './codec';

const Bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

// Each "_PATH" has a "_DATA" twin holding the PEM itself; the short names TEMPORAL_TLS_CERT /
// _KEY / _CA are the Temporal UI server's, accepted as the paths they are there.
export const TemporalTlsEnv = z.object({
  TEMPORAL_TLS: Bool.optional(),
  TEMPORAL_TLS_CLIENT_CERT_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_CLIENT_CERT_DATA: z.string().min(1).optional(),
  TEMPORAL_TLS_CLIENT_KEY_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_CLIENT_KEY_DATA: z.string().min(1).optional(),
  TEMPORAL_TLS_SERVER_CA_CERT_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_SERVER_CA_CERT_DATA: z.string().min(1).optional(),
  TEMPORAL_TLS_CERT: z.string().min(1).optional(),
  TEMPORAL_TLS_KEY: z.string().min(1).optional(),
  TEMPORAL_TLS_CA: z.string().min(1).optional(),
  TEMPORAL_TLS_SERVER_NAME: z.string().min(1).optional(),
  TEMPORAL_API_KEY: z.string().min(1).optional(),
});
export type TemporalTlsEnv = z.infer<typeof TemporalTlsEnv>;

export interface TemporalSecurity {
  tls?: TLSConfig;
  apiKey?: string;
}

function pem(name: string, data: string | undefined, file: string | undefined): Buffer | undefined {
  if (data !== undefined && file !== undefined) throw new Error(`${name}: set either the _DATA or the _PATH variable, not both`);
  if (data !== undefined) return Buffer.from(data);
  if (file === undefined) return undefined;
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new Error(`${name}: cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * TLS and API key options for Connection.connect / NativeConnection.connect. TLS is on when
 * TEMPORAL_TLS=true, when any certificate is given or with an API key (as the Temporal CLI
 * does), unless TEMPORAL_TLS=false.
 */
export function temporalSecurity(env: NodeJS.ProcessEnv = process.env): TemporalSecurity {
  const parsed = TemporalTlsEnv.safeParse(env);
  if (!parsed.success) {
    throw new Error(`invalid Temporal TLS settings:\n${parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`).join('\n')}`);
  }
  const e = parsed.data;
  const crt = pem('TEMPORAL_TLS_CLIENT_CERT', e.TEMPORAL_TLS_CLIENT_CERT_DATA, e.TEMPORAL_TLS_CLIENT_CERT_PATH ?? e.TEMPORAL_TLS_CERT);
  const key = pem('TEMPORAL_TLS_CLIENT_KEY', e.TEMPORAL_TLS_CLIENT_KEY_DATA, e.TEMPORAL_TLS_CLIENT_KEY_PATH ?? e.TEMPORAL_TLS_KEY);
  const ca = pem(
    'TEMPORAL_TLS_SERVER_CA_CERT',
    e.TEMPORAL_TLS_SERVER_CA_CERT_DATA,
    e.TEMPORAL_TLS_SERVER_CA_CERT_PATH ?? e.TEMPORAL_TLS_CA,
  );
  if ((crt === undefined) !== (key === undefined)) {
    throw new Error(
      'a Temporal client certificate needs its key and the key its certificate: set both TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH',
    );
  }
  const anyTls = crt !== undefined || ca !== undefined || e.TEMPORAL_TLS_SERVER_NAME !== undefined || e.TEMPORAL_API_KEY !== undefined;
  const useTls = e.TEMPORAL_TLS ?? anyTls;
  if (!useTls && (crt !== undefined || ca !== undefined)) {
    throw new Error('TEMPORAL_TLS=false but TLS certificates are set: remove one or the other');
  }
  const tls: TLSConfig | undefined = useTls
    ? {
        ...(e.TEMPORAL_TLS_SERVER_NAME ? { serverNameOverride: e.TEMPORAL_TLS_SERVER_NAME } : {}),
        ...(ca ? { serverRootCACertificate: ca } : {}),
        ...(crt && key ? { clientCertPair: { crt, key } } : {}),
      }
    : undefined;
  return { ...(tls ? { tls } : {}), ...(e.TEMPORAL_API_KEY ? { apiKey: e.TEMPORAL_API_KEY } : {}) };
}

/**
 * A Temporal client as every Causeway process makes one: TLS and API key from the
 * environment, the payload codec from the keys in `home` (or CAUSEWAY_CODEC_KEY[S]).
 */
export async function connectTemporalClient(opts: {
  address: string;
  namespace?: string;
  home?: string;
  connectTimeout?: Duration;
  /** where TLS and API key settings are read (default process.env) */
  env?: NodeJS.ProcessEnv;
}): Promise<{ client: Client; connection: Connection }> {
  const connection = await Connection.connect({
    address: opts.address,
    ...temporalSecurity(opts.env),
    ...(opts.connectTimeout !== undefined ? { connectTimeout: opts.connectTimeout } : {}),
  });
  const client = new Client({
    connection,
    namespace: opts.namespace ?? 'default',
    dataConverter: causewayClientDataConverter(loadCodecKeys({ home: opts.home })),
  });
  return { client, connection };
}
