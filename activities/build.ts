import fs from 'node:fs/promises';
import { getDirectory, putDirectory, transferBucket, transferKeys } from '../common/transfer';
import { CredentialResolver, lookupPipeline } from './creds';
import { NO_CREDENTIALS, paths, type ActivityDeps } from './deps';
import { StepErrored } from './errors';
import type { Runtime } from './runtime/types';
import { asPermanent } from './permanent';
import type { FinishBuildRequest, PrepareBuildRequest, PrepareBuildResult } from './types';

/** The task queue a worker's step activities listen on; a build's steps all go to the worker that prepared it. */
export function workerTaskQueue(workerName: string): string {
  return `causeway.worker.${workerName}`;
}

/** Claims the build for this worker: its directory, the CLI's uploaded inputs, the build-started event. */
export async function prepareBuild(
  deps: ActivityDeps,
  runtime: Pick<Runtime, 'releasesArtifacts' | 'runsContainers'>,
  req: PrepareBuildRequest,
): Promise<PrepareBuildResult> {
  try {
    // Names from any Temporal client (a workflow id, an upload's name) that would leave CAUSEWAY_HOME end the build at once.
    paths.build(deps.home, req.buildId);
    req.uploads.forEach((name) => paths.inputs(deps.home, req.buildId, name));
    paths.cache(deps.home, req.plan, 'plan', req.pipeline);
  } catch (err) {
    throw asPermanent(err, `build ${req.buildId}`);
  }
  if (req.imageTypes?.length && !runtime.runsContainers) {
    throw new StepErrored(
      req.imageTypes
        .map(
          (u) =>
            `${u.at}: resource ${u.resource}: its type ${u.type} is an image (a resource_types entry of type registry-image), whose check, in and out run in a container of it; worker ${deps.workerName} runs the local runtime, without containers: run the build on a containerd or kubernetes worker (causeway worker --runtime containerd), or use a base type (git, time, registry-image, mock) or a resource_types entry of type directory`,
        )
        .join('\n'),
      'ImageResourceType',
    );
  }
  // Bad input fails before the first step: every credential ref the plan leaves to this worker must resolve.
  if (req.deferredVars?.length)
    await new CredentialResolver(deps.credentials ?? NO_CREDENTIALS, lookupPipeline(req), req.varSources, req.buildId).check(
      req.deferredVars,
    );
  await fs.mkdir(paths.build(deps.home, req.buildId), { recursive: true });
  const artifacts: PrepareBuildResult['artifacts'] = {};
  if (req.uploads.length > 0) {
    const store = await transferBucket(deps.nc);
    for (const name of req.uploads) {
      const dir = paths.inputs(deps.home, req.buildId, name);
      await fs.rm(dir, { recursive: true, force: true });
      if (!(await getDirectory(store, transferKeys.input(req.buildId, name), dir))) {
        throw new StepErrored(
          `input ${name} was not uploaded (it expired or the upload was interrupted); run the build again`,
          'UploadMissing',
        );
      }
      artifacts[name] = { kind: 'dir', worker: deps.workerName, path: dir };
    }
  }
  // Not awaited: the claim does not need JetStream's ack, and the steps' events, published
  // later on the same connection, still follow it. (It never rejects: events are best-effort.)
  void deps.publisher.event(
    { type: 'build-started', buildId: req.buildId, plan: req.plan, time: new Date().toISOString() },
    `${req.buildId}/started`,
  );
  return {
    worker: deps.workerName,
    taskQueue: workerTaskQueue(deps.workerName),
    tags: deps.tags,
    artifacts,
    releasesArtifacts: runtime.releasesArtifacts,
  };
}

/** Hands the requested outputs (directories on this worker) to the CLI through the object store and announces the end of the build. */
export async function finishBuild(deps: ActivityDeps, req: FinishBuildRequest): Promise<void> {
  const exports = Object.entries(req.exports);
  if (exports.length > 0) {
    const store = await transferBucket(deps.nc);
    for (const [name, ref] of exports) await putDirectory(store, transferKeys.output(req.buildId, name), ref.path);
  }
  await deps.publisher.event(
    { type: 'build-finished', buildId: req.buildId, status: req.status, message: req.message, time: new Date().toISOString() },
    // Per run: a retried build (a new run) ends again and must be announced again.
    `${req.buildId}/${req.runId}/finished`,
  );
}
