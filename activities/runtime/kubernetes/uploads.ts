// The worker's uploads (`causeway run -i`) on the kubernetes runtime: on its disk, served to
// consumer pods' input-fetchers over the output-streamer's tar-over-HTTP protocol with the
// build's token (docs/kubernetes.md, "Uploads, exports and file: configs").
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NatsConnection } from '@nats-io/transport-node';
import { sameToken, sendDirectory } from '../../../agent/causeway-agent';
import { getDirectory, transferBucket, transferKeys } from '../../../common/transfer';
import { paths } from '../../deps';
import type { ArtifactRef } from '../../types';
import { StepErrored } from '../../errors';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export interface UploadsOptions {
  home: string;
  worker: string;
  nc: NatsConnection;
  /** the build's artifact token (the runtime's buildToken) */
  token: (buildId: string) => Promise<string>;
}

/**
 * The worker's uploads (`causeway run -i`): prepareBuild puts them on the worker's disk, where
 * the worker reads `file:` configs from them and, once `listen` has started its server, serves
 * them to consumer pods as `GET /uploads/<build>/<name>` (bearer token of the build; a tar
 * stream, as an output-streamer answers). An upload no longer on the disk (a replaced worker
 * pod, a reset build) is fetched again from the object store, which keeps it for 24 hours.
 */
export class Uploads {
  private server?: http.Server;
  private base?: string;
  private readonly fetching = new Map<string, Promise<string | undefined>>();

  constructor(private readonly o: UploadsOptions) {}

  /** Whether `ref` is the upload `name` of the build on this worker (as prepareBuild made it). */
  isUpload(buildId: string, name: string, ref: ArtifactRef): boolean {
    return NAME.test(name) && ref.kind === 'dir' && ref.worker === this.o.worker && ref.path === paths.inputs(this.o.home, buildId, name);
  }

  /** The URL consumer pods fetch an upload from, when the server runs. */
  urlFor(buildId: string, name: string): string | undefined {
    return this.base && `${this.base}/uploads/${encodeURIComponent(buildId)}/${encodeURIComponent(name)}`;
  }

  /** The upload's directory on this worker's disk, fetched again from the object store when it is gone; undefined when it expired there too. */
  ensure(buildId: string, name: string): Promise<string | undefined> {
    const dir = paths.inputs(this.o.home, buildId, name);
    if (fs.existsSync(dir)) return Promise.resolve(dir);
    const key = `${buildId}/${name}`;
    let pending = this.fetching.get(key);
    if (!pending) {
      pending = (async () => {
        const partial = `${dir}.partial`;
        await fs.promises.rm(partial, { recursive: true, force: true });
        if (!(await getDirectory(await transferBucket(this.o.nc), transferKeys.input(buildId, name), partial))) return undefined;
        await fs.promises.rename(partial, dir);
        return dir;
      })().finally(() => this.fetching.delete(key));
      this.fetching.set(key, pending);
    }
    return pending;
  }

  /** Starts serving uploads on host:port (every address without host); pods are told `http://<advertise>:<port>` (advertise defaults to host). */
  async listen(opts: { host?: string; port: number; advertise?: string }): Promise<void> {
    const host = opts.advertise ?? opts.host;
    if (!host) throw new Error('the upload server needs an address to tell pods (advertise)');
    const server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: Error) => {
        if (!res.headersSent) res.writeHead(500).end(`${err.message.split('\n')[0]}\n`);
        else res.destroy();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.host, () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    this.server = server;
    this.base = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  }

  /** The base URL pods reach the server at, once listening. */
  get address(): string | undefined {
    return this.base;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.base = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://worker');
    if (req.method === 'GET' && url.pathname === '/healthz') {
      res.writeHead(200).end('ok\n');
      return;
    }
    const parts = url.pathname.split('/').map(decodeURIComponent);
    if (req.method !== 'GET' || parts.length !== 4 || parts[1] !== 'uploads' || !NAME.test(parts[2]) || !NAME.test(parts[3])) {
      res.writeHead(404).end('not an upload: GET /uploads/<build>/<name>\n');
      return;
    }
    const [, , buildId, name] = parts;
    if (!req.headers.authorization) {
      res.writeHead(401).end('bad or missing token\n');
      return;
    }
    // An unknown build gets the same answer as a wrong token: a stranger must not learn which build ids exist.
    let token: string | undefined;
    try {
      token = await this.o.token(buildId);
    } catch (err) {
      if (!(err instanceof StepErrored)) throw err;
    }
    if (token === undefined || !sameToken(req.headers.authorization, token)) {
      res.writeHead(401).end('bad or missing token\n');
      return;
    }
    const dir = await this.ensure(buildId, name);
    if (!dir) {
      res
        .writeHead(404)
        .end(
          `upload ${name} of build ${buildId} is neither on worker ${this.o.worker}'s disk nor in the object store (it expires after 24 hours): run the build again\n`,
        );
      return;
    }
    sendDirectory(res, dir);
  }
}
