// What the kubernetes worker itself does with artifacts (docs/kubernetes.md, "Uploads, exports
// and file: configs"): it reads `-o` exports and task/service `file:` configs straight from
// the producer pod's output-streamer (peer to peer, never through a central store). It serves
// `-i` uploads to pods from uploads.ts.
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { reason } from '../../../agent/causeway-agent';
import { transferBucket, transferKeys } from '../../../common/transfer';
import { openFileInside } from '../../safe-path';
import { finishBuild } from '../../build';
import { paths, type ActivityDeps } from '../../deps';
import { StepErrored } from '../../errors';
import type { ArtifactRef, Artifacts, FinishBuildRequest, PodArtifactRef } from '../../types';
import type { KubeApi } from './api';
import { streamerUrl } from './artifact-ref';
import { sleep } from './errors';
import { tokenSecretName } from './pod';

/** Port of the worker's upload server (deploy/worker/deployment.yaml). */
export const UPLOAD_PORT = 7789;

/**
 * Asks a producer pod's output-streamer for an output (a tar stream) or one file of it.
 * Connection errors and 5xx are retried for up to the runtime's artifactRetryMs (a streamer
 * restarting, a network blip); every other refusal is a StepErrored naming `what`, the pod
 * and what to do.
 */
export async function openPodArtifact(rt: KubeApi, buildId: string, at: PodArtifactRef, what: string, file?: string): Promise<Response> {
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
        throw new StepErrored(
          `${what}: pod ${at.pod}${detail || `: no file ${file} in output ${at.path}`}: check the path, and that the producing task writes that file into its output`,
          'FileMissing',
        );
      }
      if (res.status < 500)
        throw new StepErrored(
          `${what}: pod ${at.pod}'s output-streamer answered ${url} with HTTP ${res.status}${detail}`,
          'ArtifactRefused',
        );
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

/** `rel` inside the artifact `artifact` (ref), as a stream of its bytes. */
export async function readFileOf(
  rt: KubeApi,
  buildId: string,
  ref: ArtifactRef,
  artifact: string,
  rel: string,
  what: string,
): Promise<Readable> {
  if (ref.kind === 'pod') {
    const res = await openPodArtifact(rt, buildId, ref, what, rel);
    return Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
  }
  const dir = rt.uploads?.isUpload(buildId, artifact, ref) ? await rt.uploads.ensure(buildId, artifact) : ref.path;
  try {
    // An upload is the CLI user's: a link in it must not make the worker read its own files.
    return await openFileInside(dir ?? ref.path, rel);
  } catch (err) {
    throw new StepErrored(`${what}: cannot read ${rel} in ${artifact} on worker ${ref.worker}: ${(err as Error).message}`);
  }
}

/**
 * Hands `-o` exports to the CLI. Outputs of pods go from the producer's output-streamer
 * straight into the object store (the tar stream is the stored format: no copy on the
 * worker's disk); the rest (uploads exported again) is left to the shared finishBuild.
 * A refusal (pod gone, token refused) is reported for that export after the others are done
 * and the build has ended; a stream broken midway is retried with the activity.
 */
export async function exportFromPods(
  deps: ActivityDeps,
  rt: KubeApi,
  req: FinishBuildRequest,
): Promise<{ rest: Artifacts; failures: string[] }> {
  const rest: Artifacts = {};
  const failures: string[] = [];
  for (const [name, ref] of Object.entries(req.exports)) {
    if (ref.kind !== 'pod') {
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
export async function finishKubernetesBuild(deps: ActivityDeps, rt: KubeApi, req: FinishBuildRequest): Promise<void> {
  const { rest, failures } = await exportFromPods(deps, rt, req);
  await finishBuild(deps, { ...req, exports: rest });
  await rt.deleteBuild(req.buildId);
  // Uploads were only kept for this build's pods (a reset build fetches them again from the object store).
  await fs.promises.rm(paths.build(deps.home, req.buildId), { recursive: true, force: true });
  if (failures.length > 0) throw new StepErrored(failures.join('; '), 'ExportFailed');
}
