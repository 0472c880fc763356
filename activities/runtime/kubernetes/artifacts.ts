// What the kubernetes worker itself does with artifacts (docs/kubernetes.md, "Uploads, exports
// and file: configs"): it reads `-o` exports and task/service `file:` configs straight from
// the producer pod's output-streamer (peer to peer, never through a central store). It serves
// `-i` uploads to pods from uploads.ts.
import fs from 'node:fs';
import { ApplicationFailure } from '@temporalio/common';
import { reason } from '../../../agent/causeway-agent';
import { parseServiceConfig, parseTaskConfig } from '../../../schemas';
import type { ServiceConfig, TaskConfig } from '../../../schemas/compiled';
import { transferBucket, transferKeys } from '../../../common/transfer';
import { safeJoin } from '../../artifacts';
import { paths, STEP_CONFIG_ERROR, type ActivityDeps } from '../../deps';
import { heartbeating } from '../../heartbeat';
import { loadVar } from '../../load-var';
import type { ArtifactRef, Artifacts, PodArtifactRef, FinishBuildRequest, LoadVarRequest, RunTaskRequest, StartServiceRequest } from '../../types';
import { tokenSecretName } from './pod';
import type { KubeApi } from './api';
import { streamerUrl } from './artifact-ref';
import { StepErrored, sleep } from './errors';

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
export async function readArtifactFile(rt: KubeApi, buildId: string, file: string, artifacts: Artifacts, what: string): Promise<string> {
  const split = splitArtifactFile(file, artifacts);
  if ('error' in split) throw new StepErrored(`${what}: ${split.error}`);
  return readFileOf(rt, buildId, split.ref, split.artifact, split.rel, `${what}: file ${file}`);
}

/** `rel` inside the artifact `artifact` (ref), as text. */
export async function readFileOf(rt: KubeApi, buildId: string, ref: ArtifactRef, artifact: string, rel: string, what: string): Promise<string> {
  if (ref.kind === 'pod') return (await openPodArtifact(rt, buildId, ref, what, rel)).text();
  const dir = rt.uploads?.isUpload(buildId, artifact, ref) ? await rt.uploads.ensure(buildId, artifact) : ref.path;
  try {
    return await fs.promises.readFile(safeJoin(dir ?? ref.path, rel), 'utf8');
  } catch (err) {
    throw new StepErrored(`${what}: cannot read ${rel} in ${artifact} on worker ${ref.worker}: ${(err as Error).message}`);
  }
}

/** load_var on this runtime: the shared parsing, the file read from the producer pod (or an upload). */
export function loadVarFromPods(rt: KubeApi, req: LoadVarRequest): Promise<unknown> {
  return heartbeating(() => loadVar(req, (ref, artifact, rel) => readFileOf(rt, req.buildId, ref, artifact, rel, `artifact ${artifact}`)));
}

/** A task's `file:` config, read from its artifact, with the step's inline config over it (as the local runtime does). */
export async function taskConfigFromFile(rt: KubeApi, req: RunTaskRequest): Promise<TaskConfig> {
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
export async function serviceConfigFromFile(rt: KubeApi, req: StartServiceRequest): Promise<ServiceConfig> {
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
export async function exportFromPods(deps: ActivityDeps, rt: KubeApi, req: FinishBuildRequest): Promise<{ rest: Artifacts; failures: string[] }> {
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
export async function finishKubernetesBuild(
  deps: ActivityDeps,
  rt: KubeApi,
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
