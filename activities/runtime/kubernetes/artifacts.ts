// What the kubernetes worker itself does with artifacts (docs/kubernetes.md, "Uploads, exports
// and file: configs"): it reads `-o` exports and task/service `file:` configs straight from
// the producer pod's output-streamer (peer to peer, never through a central store), and it
// serves `-i` uploads, which land on its own disk, to consumer pods' input-fetchers over the
// same tar-over-HTTP protocol with the same per-build token.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import type { NatsConnection } from '@nats-io/transport-node';
import { reason, sameToken, sendDirectory } from '../../../agent/causeway-agent';
import { parseServiceConfig, parseTaskConfig } from '../../../schemas';
import type { ServiceConfig, TaskConfig } from '../../../schemas/compiled';
import { getDirectory, safeJoin, transferBucket, transferKeys } from '../../artifacts';
import { paths, STEP_CONFIG_ERROR, type ActivityDeps } from '../../deps';
import { heartbeating } from '../../heartbeat';
import { loadVar } from '../../load-var';
import type { ArtifactRef, Artifacts, FinishBuildRequest, LoadVarRequest, RunTaskRequest, StartServiceRequest } from '../../types';
import { tokenSecretName } from './pod';
import { StepErrored, parseArtifactPath, streamerUrl, type KubernetesRuntime } from './task';

/** Port of the worker's upload server (deploy/worker/deployment.yaml). */
export const UPLOAD_PORT = 7789;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Asks a producer pod's output-streamer for an output (a tar stream) or one file of it.
 * Connection errors and 5xx are retried for up to the runtime's artifactRetryMs (a streamer
 * restarting, a network blip); every other refusal is a StepErrored naming `what`, the pod
 * and what to do.
 */
export async function openPodArtifact(rt: KubernetesRuntime, buildId: string, ref: ArtifactRef, what: string, file?: string): Promise<Response> {
  const at = parseArtifactPath(ref.path);
  if (!at) throw new Error(`${ref.path} is not an artifact of a pod`);
  const token = await rt.buildToken(buildId);
  const ip = await rt.producerIp(at.pod, what);
  const url = streamerUrl(ip, at.path, file);
  const deadline = Date.now() + (rt.opts.artifactRetryMs ?? 30_000);
  for (let delay = 100; ; delay = Math.min(2000, delay * 2)) {
    let why: string;
    try {
      const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
      if (res.ok && res.body) return res;
      const detail = await reason(res);
      if (res.status === 401) {
        throw new StepErrored(
          `${what}: pod ${at.pod}'s output-streamer refused the build's token (HTTP 401): the pod is not this build's, or the Secret ${tokenSecretName(buildId)} was replaced; run the build again`,
          'TokenRefused',
        );
      }
      if (res.status === 404 && file !== undefined) {
        // The streamer says which is missing: the file, or the whole output directory.
        throw new StepErrored(`${what}: pod ${at.pod}${detail || `: no file ${file} in output ${at.path}`}: check the path, and that the producing task writes that file into its output`, 'FileMissing');
      }
      if (res.status < 500) throw new StepErrored(`${what}: pod ${at.pod}'s output-streamer answered ${url} with HTTP ${res.status}${detail}`, 'ArtifactRefused');
      why = `HTTP ${res.status}${detail}`;
    } catch (err) {
      if (err instanceof StepErrored) throw err;
      why = (err as Error).message;
    }
    if (Date.now() > deadline) {
      throw new StepErrored(
        `${what}: cannot reach pod ${at.pod}'s output-streamer at ${url}: ${why}. The worker must run where pod IPs are reachable (in the cluster) and be allowed to port 7788 by any NetworkPolicy`,
        'ProducerUnreachable',
      );
    }
    await sleep(delay);
  }
}

/** `file: <artifact>/<path>` → the artifact's name and the path inside it, or an error naming the artifacts there are. */
export function splitArtifactFile(file: string, artifacts: Artifacts): { artifact: string; rel: string; ref: ArtifactRef } | { error: string } {
  const [artifact, ...rest] = file.split('/');
  const ref = artifacts[artifact];
  if (!ref || rest.length === 0 || rest.join('/') === '') {
    return { error: `file ${file}: the first part of the path must name an artifact (available: ${Object.keys(artifacts).join(', ') || 'none'})` };
  }
  return { artifact, rel: rest.join('/'), ref };
}

/** One file of an artifact, as text: from its producer pod, or from an upload on this worker's disk. */
export async function readArtifactFile(rt: KubernetesRuntime, buildId: string, file: string, artifacts: Artifacts, what: string): Promise<string> {
  const split = splitArtifactFile(file, artifacts);
  if ('error' in split) throw new StepErrored(`${what}: ${split.error}`);
  return readFileOf(rt, buildId, split.ref, split.artifact, split.rel, `${what}: file ${file}`);
}

/** `rel` inside the artifact `artifact` (ref), as text. */
export async function readFileOf(rt: KubernetesRuntime, buildId: string, ref: ArtifactRef, artifact: string, rel: string, what: string): Promise<string> {
  if (parseArtifactPath(ref.path)) return (await openPodArtifact(rt, buildId, ref, what, rel)).text();
  const dir = rt.uploads?.isUpload(buildId, artifact, ref) ? await rt.uploads.ensure(buildId, artifact) : ref.path;
  try {
    return await fs.promises.readFile(safeJoin(dir ?? ref.path, rel), 'utf8');
  } catch (err) {
    throw new StepErrored(`${what}: cannot read ${rel} in ${artifact} on worker ${ref.worker}: ${(err as Error).message}`);
  }
}

/** load_var on this runtime: the shared parsing, the file read from the producer pod (or an upload). */
export function loadVarFromPods(rt: KubernetesRuntime, req: LoadVarRequest): Promise<unknown> {
  return heartbeating(() => loadVar(req, (ref, artifact, rel) => readFileOf(rt, req.buildId, ref, artifact, rel, `artifact ${artifact}`)));
}

/** A task's `file:` config, read from its artifact, with the step's inline config over it (as the local runtime does). */
export async function taskConfigFromFile(rt: KubernetesRuntime, req: RunTaskRequest): Promise<TaskConfig> {
  const { step } = req;
  const what = `task ${step.task}`;
  const text = await readArtifactFile(rt, req.buildId, step.file!, req.artifacts, what);
  try {
    const fromFile = parseTaskConfig({ text, file: step.file!, vars: step.vars });
    return step.config ? { ...fromFile, ...step.config } : fromFile;
  } catch (err) {
    throw new StepErrored(`${what}: ${(err as Error).message}`);
  }
}

/** A service's `file:` config, read from its artifact. */
export async function serviceConfigFromFile(rt: KubernetesRuntime, req: StartServiceRequest): Promise<ServiceConfig> {
  const { spec } = req;
  const what = `service ${spec.name}`;
  const text = await readArtifactFile(rt, req.buildId, spec.file ?? '', req.artifacts, what);
  try {
    return parseServiceConfig({ text, file: spec.file ?? '', service: spec.name });
  } catch (err) {
    throw new StepErrored(`${what}: ${(err as Error).message}`);
  }
}

/**
 * Hands `-o` exports to the CLI. Outputs of pods go from the producer's output-streamer
 * straight into the object store (the tar stream is the stored format: no copy on the
 * worker's disk); the rest (uploads exported again) is left to the shared finishBuild.
 * A refusal (pod gone, token refused) is reported for that export after the others are done
 * and the build has ended; a stream broken midway is retried with the activity.
 */
export async function exportFromPods(deps: ActivityDeps, rt: KubernetesRuntime, req: FinishBuildRequest): Promise<{ rest: Artifacts; failures: string[] }> {
  const rest: Artifacts = {};
  const failures: string[] = [];
  for (const [name, ref] of Object.entries(req.exports)) {
    if (!parseArtifactPath(ref.path)) {
      rest[name] = ref;
      continue;
    }
    let res: Response;
    try {
      res = await openPodArtifact(rt, req.buildId, ref, `output ${name} (-o ${name})`);
    } catch (err) {
      if (!(err instanceof StepErrored)) throw err;
      failures.push(err.message);
      continue;
    }
    const store = await transferBucket(deps.nc);
    await store.put({ name: transferKeys.output(req.buildId, name) }, res.body as ReadableStream<Uint8Array>);
  }
  return { rest, failures };
}

/** The kubernetes worker's finishBuild: exports from pods, the shared end of the build, then the build's objects and its directory go. */
export async function finishKubernetesBuild(
  deps: ActivityDeps,
  rt: KubernetesRuntime,
  base: (req: FinishBuildRequest) => Promise<void>,
  req: FinishBuildRequest,
): Promise<void> {
  const { rest, failures } = await heartbeating(() => exportFromPods(deps, rt, req));
  await base({ ...req, exports: rest });
  await rt.deleteBuild(req.buildId);
  // Uploads were only kept for this build's pods (a reset build fetches them again from the object store).
  await fs.promises.rm(paths.build(deps.home, req.buildId), { recursive: true, force: true });
  if (failures.length > 0) throw ApplicationFailure.create({ type: STEP_CONFIG_ERROR, message: failures.join('; '), nonRetryable: true });
}

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
    return NAME.test(name) && ref.worker === this.o.worker && ref.path === paths.inputs(this.o.home, buildId, name);
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
      res.writeHead(404).end(`upload ${name} of build ${buildId} is neither on worker ${this.o.worker}'s disk nor in the object store (it expires after 24 hours): run the build again\n`);
      return;
    }
    sendDirectory(res, dir);
  }
}
