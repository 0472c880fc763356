// Concourse's `vault` manager over a KV v2 mount (atc/creds/vault): `<prefix>/<team>/<pipeline>/<name>`,
// then `<prefix>/<team>/<name>`, then `<prefix>/<shared_path>/<name>`. The mount is the first
// segment of the prefix; a read is GET /v1/<mount>/data/<rest> with the client token.
import http from 'node:http';
import https from 'node:https';
import { valueOf, type SecretLookup, type SecretStore } from './types';

export interface VaultStoreOptions {
  url: string;
  client_token: string;
  path_prefix: string;
  shared_path?: string;
  namespace?: string;
  ca_cert?: string;
}

/** How long one read may take before the step errors (Concourse's default client timeout is 60 s). */
const VAULT_TIMEOUT_MS = 30_000;

export class VaultStore implements SecretStore {
  readonly describe: string;
  private readonly prefix: string;

  constructor(private readonly opts: VaultStoreOptions) {
    this.prefix = `/${opts.path_prefix.replace(/^\/+|\/+$/g, '')}`;
    this.describe = `vault ${opts.url} (${this.prefix})`;
  }

  lookupPaths(team: string, pipeline: string, name: string): string[] {
    const paths = [`${this.prefix}/${team}/${pipeline}/${name}`, `${this.prefix}/${team}/${name}`];
    if (this.opts.shared_path) paths.push(`${this.prefix}/${this.opts.shared_path.replace(/^\/+|\/+$/g, '')}/${name}`);
    return paths;
  }

  async get(path: string): Promise<SecretLookup> {
    const [mount, ...rest] = path.replace(/^\/+/, '').split('/');
    const url = new URL(`${this.opts.url.replace(/\/+$/, '')}/v1/${[mount, 'data', ...rest].map(encodeURIComponent).join('/')}`);
    const { status, body } = await this.request(url);
    if (status === 404) return { found: false };
    if (status !== 200) throw new Error(`vault: GET ${url.pathname} answered ${status}: ${vaultErrors(body)}`);
    const data = (body as { data?: { data?: unknown } } | undefined)?.data?.data;
    // A deleted or destroyed version reads as 200 with data null in some versions, 404 in others.
    if (data === null || data === undefined) return { found: false };
    if (typeof data !== 'object' || Array.isArray(data)) throw new Error(`vault: ${url.pathname} is not a KV v2 secret`);
    return { found: true, value: valueOf(data as Record<string, unknown>) };
  }

  private request(url: URL): Promise<{ status: number; body: unknown }> {
    const headers: Record<string, string> = { 'X-Vault-Token': this.opts.client_token };
    if (this.opts.namespace) headers['X-Vault-Namespace'] = this.opts.namespace;
    const get = url.protocol === 'https:' ? https.get : http.get;
    return new Promise((resolve, reject) => {
      const req = get(url, { headers, timeout: VAULT_TIMEOUT_MS, ...(this.opts.ca_cert ? { ca: this.opts.ca_cert } : {}) }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: unknown;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            body = text;
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`vault: no answer from ${url.origin} in ${VAULT_TIMEOUT_MS / 1000}s`)));
      req.on('error', (err) => reject(new Error(`vault: cannot reach ${url.origin}: ${err.message}`, { cause: err })));
    });
  }
}

function vaultErrors(body: unknown): string {
  const errors = (body as { errors?: unknown } | undefined)?.errors;
  return Array.isArray(errors) && errors.length > 0 ? errors.join('; ') : typeof body === 'string' ? body.slice(0, 200) : 'no message';
}
