// A pipeline's check of a resource type that is an image (Concourse's custom resource_types):
// /opt/resource/check runs in a container of the type's image, through the runtime's task path
// as a build's get runs it (workflows/resource.ts), with the worker's network. Its build id is
// the check's lease id (runtime/local/check.ts): a retried check on the same worker finds its
// own container, and the reconciler removes what a check left once its worker is gone.
import fs from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { Kvm } from '@nats-io/kv';
import { RESOURCE_RESPONSE, RESOURCE_RESPONSE_FILE, RESOURCE_WRAPPERS } from '../common/resource-scripts';
import type { ResourceRef, TaskStep } from '../schemas/compiled';
import { WORKER_BUCKET, WorkerRecord, shownState } from '../schemas/workers';
import { workerTaskQueue } from './build';
import type { CredentialResolver } from './creds';
import { paths, type ActivityDeps } from './deps';
import { StepErrored } from './errors';
import { checkId } from './runtime/local/check';
import type { RunResult } from './runtime/local/spawner';
import type { Runtime } from './runtime/types';
import { followTask } from './step/follow';
import { RESOURCE_REQUEST_ENV } from './step/task';
import { artifactFile, readArtifactText, resolveTaskConfig, withCredentials } from './step/task-config';

/** The image types a resource_types entry may have (workflows/resource.ts). */
const IMAGE_TYPES = ['registry-image', 'docker-image'];
const STDERR_KEPT = 4_000;
/** The step id of a check's one task in its check-scoped build. */
const CHECK_STEP = 'check';
const KEEP_ALIVE_MS = 5_000;

/**
 * The task queue of a worker that runs containers for a check of an image type: this worker's
 * own when its runtime runs them, else a running one of the registry that serves the pipeline's
 * queue (the first by name, so checks of a pipeline keep to one worker's image cache).
 */
export async function containerWorker(
  deps: Pick<ActivityDeps, 'nc' | 'workerName'>,
  runtime: Runtime,
  req: { resource: string; taskQueue: string },
): Promise<string> {
  if (runtime.runsContainers) return workerTaskQueue(deps.workerName);
  const kv = await new Kvm(deps.nc).open(WORKER_BUCKET);
  const now = Date.now();
  const workers: WorkerRecord[] = [];
  for await (const key of await kv.keys()) {
    const entry = await kv.get(key);
    const parsed = entry?.operation === 'PUT' ? WorkerRecord.safeParse(entry.json()) : undefined;
    if (parsed?.success && parsed.data.taskQueue === req.taskQueue) workers.push(parsed.data);
  }
  const able = workers
    .filter((w) => w.runtime !== 'local' && shownState(w, now) === 'running')
    .sort((a, b) => a.name.localeCompare(b.name));
  if (able[0]) return workerTaskQueue(able[0].name);
  throw new StepErrored(
    `resource ${req.resource}: its type is an image, and checking it needs a container: no running worker of task queue ${req.taskQueue} ` +
      `has a runtime that runs containers (containerd or kubernetes; workers here: ${workers.map((w) => `${w.name} (${w.runtime})`).join(', ') || 'none'}); ` +
      'start one (`causeway worker --runtime containerd`), or use a host type (git, time, registry-image, mock, type: directory)',
  );
}

/**
 * Runs the type's `check` in a container of its image with `request` (credential refs already
 * resolved) on stdin; its stdout is the response file. Past `timeoutMs` the container is killed.
 * A base type comes here from a runtime with no host for its scripts (kubernetes), which runs
 * them in a container of the type's image (CAUSEWAY_RESOURCE_IMAGES), as a build's get.
 */
export async function runImageCheck(
  deps: Pick<ActivityDeps, 'home' | 'workerName' | 'killGraceMs' | 'log'>,
  runtime: Runtime,
  req: { pipeline: string; resource: ResourceRef; request: unknown; timeoutMs: number; creds: CredentialResolver },
): Promise<RunResult> {
  const { resource, creds } = req;
  const type = resource.type;
  if (type.kind === 'unknown' || (type.kind === 'image' && !IMAGE_TYPES.includes(type.type)))
    throw new StepErrored(
      `resource ${resource.name}: its type ${type.name} is neither a host type nor a resource_types entry of type registry-image (or docker-image)`,
    );
  if (!runtime.runsContainers)
    throw new StepErrored(
      `resource ${resource.name}: its type ${type.name} is an image; worker ${deps.workerName} runs the local runtime, which has no containers: ` +
        'checking it needs a worker whose runtime is containerd or kubernetes',
    );
  const buildId = checkId(req.pipeline, resource.name);
  const runId = 'check';
  let step: TaskStep = {
    kind: 'task',
    id: CHECK_STEP,
    task: `check ${resource.name}`,
    config: {
      platform: 'linux',
      inputs: [],
      outputs: [{ name: RESOURCE_RESPONSE }],
      caches: [],
      params: { [RESOURCE_REQUEST_ENV]: JSON.stringify(req.request) },
      run: {
        path: 'sh',
        args: ['-c', RESOURCE_WRAPPERS.check, type.kind === 'host' ? path.join(type.dir, 'check') : '/opt/resource/check'],
      },
      ...(type.kind === 'host' ? {} : { image_resource: { type: type.type, source: type.source } }),
    },
    params: {},
    vars: {},
    inputMapping: {},
    outputMapping: {},
    // Concourse: a resource_types entry with `privileged: true` runs its containers privileged.
    privileged: type.kind !== 'host' && type.privileged === true,
  };
  // The type's source (the image's credentials) may hold refs.
  step = await withCredentials(step, creds);
  const resolved = step;
  const abort = new AbortController();
  const detach = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    abort.abort();
  }, req.timeoutMs);
  const ctx = Context.current();
  ctx.cancelled.catch(() => abort.abort());
  // Throughout, an image's pull too: the workflow takes a check without heartbeats for a dead worker's.
  const keepAlive = setInterval(() => ctx.heartbeat(), KEEP_ALIVE_MS);
  let stderr = '';
  const note = (text: string) => deps.log.info({ check: buildId }, text);
  try {
    const handle = await runtime.findOrStartTask(
      {
        req: {
          buildId,
          runId,
          plan: req.pipeline,
          step: resolved,
          runKey: String(ctx.info.attempt),
          attempt: ctx.info.attempt,
          artifacts: {},
          ...(type.kind === 'host' ? { onHost: true, ...(type.base ? { baseType: type.name } : {}) } : { resourceContainer: true }),
        },
        resolve: async () => ({ config: await resolveTaskConfig(runtime, buildId, resolved, {}, undefined, creds), inputs: [] }),
      },
      { note },
    );
    const outcome = await followTask(handle, {
      // Its stderr is the check's error when it fails, as a host check's is; nothing is published.
      publish: async (piece) => {
        if (piece.stream === 'stderr') stderr = (stderr + piece.data.toString()).slice(-STDERR_KEPT);
        return piece.data.length;
      },
      beat: () => ctx.heartbeat(),
      note,
      warn: (message) => deps.log.warn({ check: buildId }, message),
      abort: abort.signal,
      detach: detach.signal,
      killGraceMs: deps.killGraceMs,
    });
    if (outcome === 'aborted') return { code: null, signal: 'SIGKILL', stdout: '', stderr, timedOut };
    const stdout =
      outcome.exitCode === 0
        ? await readArtifactText(
            runtime,
            artifactFile(buildId, RESOURCE_RESPONSE_FILE, outcome.outputs, 'check response'),
            `check response of ${resource.name}`,
          )
        : '';
    return { code: outcome.exitCode, signal: null, stdout, stderr, timedOut: false };
  } finally {
    clearTimeout(timer);
    clearInterval(keepAlive);
    // Its container, mounts and network go, as a build's at its end; then its directory.
    await runtime.finishBuild({ buildId, runId, status: 'succeeded', exports: {} });
    await fs.rm(paths.build(deps.home, buildId), { recursive: true, force: true });
  }
}
