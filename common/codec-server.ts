// Temporal's remote codec endpoint (POST /encode, /decode with {"payloads": [...]}, fields in
// base64 as proto3 JSON writes them), so the Temporal UI and `temporal --codec-endpoint` show
// decoded payloads to whoever holds the token. The token is accepted as a bearer token or as
// the first path segment (http://host:port/TOKEN/decode), since the UI sends no header of its
// own to a codec endpoint unless it has a login to pass on. It also serves the idtoken
// issuer's OIDC discovery document and JWKS (public keys, no token), so a dev stack's tokens
// verify against the stack itself.
import http from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { z } from 'zod';
import { ensureIdTokenKeys, JWKS_PATH, OPENID_CONFIGURATION_PATH, openIdConfiguration, publicJwks } from './idtoken';

const MAX_BODY_BYTES = 8 * 1024 * 1024; // above Temporal's 2 MiB payload limit, with base64 and batching
const B64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'base64');
const JsonPayload = z.object({ metadata: z.record(z.string(), B64).nullish(), data: B64.nullish() });
const CodecRequest = z.object({ payloads: z.array(JsonPayload) });

function fromJson(p: z.infer<typeof JsonPayload>): Payload {
  return {
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
    data: Buffer.from(p.data ?? '', 'base64'),
  };
}

function toJson(p: Payload): z.infer<typeof JsonPayload> {
  return {
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
    data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
  };
}

export interface CodecServerOptions {
  codec: PayloadCodec;
  token: string;
  /** origins allowed by CORS (the Temporal UI's, e.g. http://127.0.0.1:8233) */
  origins: string[];
  /** the idtoken issuer this server answers for: its /.well-known/ documents under the issuer URL's path */
  idtoken?: { issuer: string; keysFile: string };
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The request handler; `listen` it where the UI's browser can reach it. */
export function codecServer(opts: CodecServerOptions): http.Server {
  return http.createServer((req, res) => {
    const origin = req.headers.origin;
    if (origin && opts.origins.includes(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Vary', 'Origin');
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'Content-Type, Authorization, X-Namespace');
    }
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'OPTIONS') {
      res.writeHead(origin && opts.origins.includes(origin) ? 204 : 403);
      res.end();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://codec');
    if (opts.idtoken && req.method === 'GET') {
      const base = new URL(opts.idtoken.issuer).pathname.replace(/\/$/, '');
      if (url.pathname === `${base}${OPENID_CONFIGURATION_PATH}`) return reply(200, openIdConfiguration(opts.idtoken.issuer));
      if (url.pathname === `${base}${JWKS_PATH}`) {
        // Read at each request: keys an operator rotates in the file are published at once.
        try {
          reply(200, publicJwks(ensureIdTokenKeys(opts.idtoken.keysFile)));
        } catch (err) {
          reply(500, { error: `idtoken signing keys: ${(err as Error).message}` });
        }
        return;
      }
    }
    const segments = url.pathname.split('/').filter(Boolean);
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const pathToken = segments.length === 2 ? segments[0] : undefined;
    const action = segments.at(-1);
    if (!(bearer && sameSecret(bearer, opts.token)) && !(pathToken && sameSecret(pathToken, opts.token))) {
      reply(401, { error: 'missing or wrong codec token (Authorization: Bearer TOKEN, or /TOKEN/decode)' });
      return;
    }
    if (req.method !== 'POST' || (action !== 'encode' && action !== 'decode') || segments.length > 2) {
      reply(404, { error: 'POST /encode or /decode' });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reply(413, { error: `body larger than ${MAX_BODY_BYTES} bytes` });
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on('end', () => {
      if (res.headersSent) return;
      let body: z.infer<typeof CodecRequest>;
      try {
        body = CodecRequest.parse(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch (err) {
        reply(400, { error: `expected {"payloads": [{"metadata": {...}, "data": "<base64>"}]}: ${(err as Error).message}` });
        return;
      }
      const payloads = body.payloads.map(fromJson);
      (action === 'encode' ? opts.codec.encode(payloads) : opts.codec.decode(payloads)).then(
        (out) => reply(200, { payloads: out.map(toJson) }),
        (err: Error) => reply(400, { error: err.message }),
      );
    });
  });
}
