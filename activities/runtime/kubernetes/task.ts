// The kubernetes runtime's task step: one pod per step run, in the worker's namespace, owned
// by the build's anchor ConfigMap. Idempotent by name (a retried activity finds the pod its
// previous attempt created and re-attaches), watched from a resourceVersion (one GET to
// start or resume, then a watch; never a list per tick), deleted with a grace period on
// abort. See docs/kubernetes.md.
import { Writable } from 'node:stream';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { interpolateServices, serviceEnv } from '../../../common/services';
import type { TaskConfig } from '../../../schemas/compiled';
import { STEP_CONFIG_ERROR, type ActivityDeps } from '../../deps';
import type { ArtifactRef, Artifacts, RunTaskRequest, RunTaskResult } from '../../types';
import type { KubeApi } from './api';
import { podArtifact, streamerUrl } from './artifact-ref';
import { taskConfigFromFile } from './artifacts';
import { k8s, type V1Pod } from './client';
import { StepDetached, StepErrored, apiCode, apiMessage, isApiAnswer, sleep } from './errors';
import { CONTAINER_LOG_DRAIN_MS, LineCutter, type LogPiece } from './log-pieces';
import { ANNOTATIONS, CONTAINERS, PodSpecError, buildPod, podName, type InputSource } from './pod';
import { containerStarted, evaluate, oomKilled } from './pod-status';

export type StepOutcome =
  | { state: 'succeeded' | 'failed'; exitCode: number; outputs: Artifacts; pod: string; reattached: boolean }
  | { state: 'aborted'; pod: string; reattached: boolean };

/** What the step's caller lets the runtime see: abort, detach (worker shutdown), heartbeats, notes. */
export interface StepHooks {
  /** the step is aborted: delete its pod (with the grace period) and end */
  abort?: AbortSignal;
  /** the worker is going away: leave the pod running for the next worker, end with StepDetached */
  detach?: AbortSignal;
  heartbeat?: (details: { pod: string; phase?: string }) => void;
  note?: (text: string) => void;
  /** the task container's output (stdout and stderr as the kubelet merges them), in order, with its byte offset */
  log?: (data: Buffer, offset: number) => Promise<void>;
}

/** The inline config, or the task file read from its artifact (a producer pod, or an upload) with the inline config over it. */
async function resolveConfig(rt: KubeApi, req: RunTaskRequest): Promise<TaskConfig> {
  const { step } = req;
  const config = step.file ? await taskConfigFromFile(rt, req) : step.config;
  if (!config) throw new StepErrored(`task ${step.task}: neither config nor file is set`);
  if (!req.services) return config;
  try {
    return interpolateServices(config, req.services);
  } catch (err) {
    throw new StepErrored(`task ${step.task}: ${(err as Error).message}`);
  }
}

/** Where each input comes from: the producer pod's IP and the output's path. */
async function resolveInputs(rt: KubeApi, req: RunTaskRequest, config: TaskConfig): Promise<InputSource[]> {
  const sources: InputSource[] = [];
  for (const input of config.inputs) {
    const source = req.step.inputMapping[input.name] ?? input.name;
    const ref = req.artifacts[source];
    if (!ref) {
      if (input.optional) continue;
      const known = Object.keys(req.artifacts);
      throw new StepErrored(`task ${req.step.task}: missing input \`${input.name}\`: no earlier step produced \`${source}\` (available: ${known.join(', ') || 'none'})`);
    }
    if (ref.kind !== 'pod') {
      // Not in a pod: an upload (`-i`) on the worker's disk, which pods fetch from the worker.
      sources.push({ name: input.name, path: input.path ?? input.name, url: uploadUrl(rt, req, source, ref) });
      continue;
    }
    const ip = await rt.producerIp(ref.pod, `task ${req.step.task}: input ${source}`);
    sources.push({ name: input.name, path: input.path ?? input.name, url: streamerUrl(ip, ref.path) });
  }
  return sources;
}

/** Where a consumer pod fetches an upload from: the worker's upload server, or an error saying how to get one. */
function uploadUrl(rt: KubeApi, req: RunTaskRequest, source: string, ref: ArtifactRef): string {
  const what = `task ${req.step.task}: input ${source}`;
  if (!rt.uploads?.isUpload(req.buildId, source, ref)) {
    throw new StepErrored(`${what} is on worker ${ref.worker}'s disk (${ref.path}), not in a pod of this cluster, and is not an upload this worker could serve`);
  }
  const url = rt.uploads.urlFor(req.buildId, source);
  if (!url) {
    throw new StepErrored(
      `${what} was uploaded (-i) to worker ${rt.worker}, which serves uploads to pods only with an upload address: start it with --upload-address <an address pods can reach> (deploy/worker/deployment.yaml passes its pod IP)`,
    );
  }
  return url;
}

/** Creates the step's pod, or finds the one a previous attempt of this activity created. */
export async function createOrAttach(rt: KubeApi, req: RunTaskRequest, note?: (text: string) => void): Promise<{ pod: V1Pod; reattached: boolean }> {
  const name = podName(req.buildId, req.runId, req.step.id, req.runKey, req.step.task);
  try {
    rt.calls.get++;
    const existing = await rt.call('get pod', () => rt.core.readNamespacedPod({ name, namespace: rt.namespace }));
    return { pod: existing, reattached: true };
  } catch (err) {
    if (apiCode(err) !== 404) throw err;
  }
  const config = await resolveConfig(rt, req);
  const { anchor, tokenSecret } = await rt.ensureAnchor(req.buildId);
  const inputs = await resolveInputs(rt, req, config);
  let pod: V1Pod;
  try {
    pod = buildPod({
      namespace: rt.namespace,
      buildId: req.buildId,
      runId: req.runId,
      step: req.step,
      config,
      runKey: req.runKey,
      attempt: req.attempt,
      worker: rt.worker,
      anchor,
      tokenSecret,
      defaultImage: rt.opts.defaultImage,
      agentImage: rt.opts.agentImage,
      inputs,
      serviceEnv: req.services ? serviceEnv(req.services) : undefined,
      terminationGracePeriodSeconds: rt.opts.graceSeconds ?? 10,
      serviceAccountName: rt.opts.serviceAccountName,
    });
  } catch (err) {
    if (err instanceof PodSpecError) throw new StepErrored(`task ${req.step.task}: ${err.message}`);
    throw err;
  }
  if (req.step.image && config.image_resource) note?.(`image ${req.step.image} (the step's image) is used instead of image_resource`);
  try {
    rt.calls.create++;
    return { pod: await rt.call('create pod', () => rt.core.createNamespacedPod({ namespace: rt.namespace, body: pod })), reattached: false };
  } catch (err) {
    // Created by a concurrent attempt between our GET and POST: attach to it.
    if (apiCode(err) === 409) {
      rt.calls.get++;
      return { pod: await rt.call('get pod', () => rt.core.readNamespacedPod({ name, namespace: rt.namespace })), reattached: true };
    }
    if (apiCode(err) === 422 || apiCode(err) === 400 || apiCode(err) === 403) {
      throw new StepErrored(`task ${req.step.task}: Kubernetes refused pod ${name}: ${apiMessage(err)}`, 'Invalid');
    }
    throw err;
  }
}

/** Runs a task step to its end: exit code, outputs, or StepErrored / StepDetached / aborted. */
export async function runPodTask(rt: KubeApi, req: RunTaskRequest, hooks: StepHooks = {}): Promise<StepOutcome> {
  const { pod, reattached } = await createOrAttach(rt, req, hooks.note);
  const name = pod.metadata!.name!;
  if (reattached) hooks.note?.(`re-attached to pod ${name} (phase ${pod.status?.phase ?? 'Pending'})`);
  const outputs: Artifacts = {};
  const declared = JSON.parse(pod.metadata?.annotations?.[ANNOTATIONS.outputs] ?? '[]') as { name: string; path: string }[];
  for (const o of declared) outputs[o.name] = podArtifact(rt.worker, name, o.path);

  let result: Awaited<ReturnType<typeof watchPod>>;
  try {
    result = await watchPod(rt, pod, hooks);
  } catch (err) {
    // The step is over (image pull error, unschedulable, evicted...): a pod left behind
    // would keep pulling or waiting for a node. Best effort: the anchor takes it anyway.
    if (err instanceof StepErrored && err.reason !== 'APIUnreachable') await rt.deletePod(name).catch(() => undefined);
    throw err;
  }
  if (result.kind === 'aborted') return { state: 'aborted', pod: name, reattached };
  // A pod without outputs has nothing more to give: delete it now. One with outputs stays
  // (owned by the anchor) until its consumers have fetched; deleting the anchor removes it.
  if (declared.length === 0) await rt.deletePod(name, 0).catch(() => undefined);
  return { state: result.exitCode === 0 ? 'succeeded' : 'failed', exitCode: result.exitCode, outputs, pod: name, reattached };
}

/**
 * Follows the pod with a watch from its resourceVersion until the task container ends,
 * something makes it impossible to run (errored), or the step is aborted / detached.
 */
async function watchPod(rt: KubeApi, initial: V1Pod, hooks: StepHooks): Promise<{ kind: 'exited'; exitCode: number } | { kind: 'aborted' }> {
  const name = initial.metadata!.name!;
  const namespace = rt.namespace;
  const unschedulableGraceMs = rt.opts.unschedulableGraceMs ?? 60_000;
  let current: V1Pod | undefined = initial;
  let unschedulableSince: number | undefined;
  let wake: () => void = () => undefined;
  let pending: unknown[] = [];
  let watchDone: { err: unknown } | undefined;
  let watchAbort: AbortController | undefined;
  let unreachableSince: number | undefined;
  const heartbeat = setInterval(() => hooks.heartbeat?.({ pod: name, phase: current?.status?.phase }), 1000);
  const onSignal = () => wake();
  hooks.abort?.addEventListener('abort', onSignal);
  hooks.detach?.addEventListener('abort', onSignal);

  // The task container's log, followed once it has started; a failure to get it costs the
  // live view only (as a NATS outage does), never the step.
  let logs: { done: Promise<void>; abort?: AbortController } | undefined;
  const startLogs = () => {
    if (!hooks.log) return;
    let ended: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (ended = resolve));
    // Message ids are byte offsets of whole lines, so a re-attached activity reading the log
    // from the start, however the kubelet chunks it this time, sends nothing twice.
    const cutter = new LineCutter();
    const send = async (pieces: LogPiece[]) => {
      for (const piece of pieces) await hooks.log!(piece.data, piece.offset).catch(() => undefined);
    };
    const sink = new Writable({
      write: (chunk: Buffer, _enc, cb) => void send(cutter.push(chunk)).then(() => cb()),
      final: (cb) => void send(cutter.end()).then(() => {
        ended();
        cb();
      }),
    });
    sink.on('error', () => ended());
    sink.on('close', () => ended());
    logs = { done };
    rt.calls.log++;
    const { Log } = k8s();
    new Log(rt.kc)
      .log(namespace, name, CONTAINERS.task, sink, { follow: true })
      .then((abort) => {
        if (logs) logs.abort = abort;
      })
      .catch((err: unknown) => {
        hooks.note?.(`the task's log is not available: ${apiMessage(err)}`);
        ended();
      });
  };
  const drainLogs = async () => {
    if (!logs) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([logs.done, new Promise<void>((r) => (timer = setTimeout(r, rt.opts.logDrainMs ?? CONTAINER_LOG_DRAIN_MS)))]);
    clearTimeout(timer);
    logs.abort?.abort();
  };

  const startWatch = async (resourceVersion: string | undefined) => {
    watchDone = undefined;
    rt.calls.watch++;
    const { Watch } = k8s();
    watchAbort = await new Watch(rt.kc).watch(
      `/api/v1/namespaces/${namespace}/pods`,
      {
        fieldSelector: `metadata.name=${name}`,
        resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: rt.opts.watchTimeoutSeconds ?? 300,
      },
      (type: string, obj: unknown) => {
        rt.calls.watchEvents++;
        pending.push({ type, obj });
        wake();
      },
      (err: unknown) => {
        watchDone = { err };
        wake();
      },
    );
  };

  try {
    await startWatch(initial.metadata?.resourceVersion);
    for (;;) {
      if (hooks.detach?.aborted) throw new StepDetached(`worker shut down; pod ${name} keeps running and is handed over`);
      if (hooks.abort?.aborted) {
        watchAbort?.abort();
        await abortPod(rt, name, hooks);
        return { kind: 'aborted' };
      }
      // Apply what the watch delivered.
      for (const ev of pending) {
        const { type, obj } = ev as { type: string; obj: V1Pod & { code?: number; reason?: string; message?: string } };
        if (type === 'ERROR') {
          // Usually 410 Gone: our resourceVersion is too old. Resume from a fresh GET.
          watchDone = { err: { code: obj.code ?? 410, message: obj.message } };
        } else if (type === 'DELETED') {
          throw new StepErrored(`pod ${name} was deleted before its task ended${obj.status?.reason ? ` (${obj.status.reason})` : ''}`, 'Deleted');
        } else if (type === 'BOOKMARK') {
          if (current) current = { ...current, metadata: { ...current.metadata, resourceVersion: obj.metadata?.resourceVersion } };
        } else {
          current = obj;
        }
      }
      pending = [];
      if (!logs && containerStarted(current, CONTAINERS.task)) startLogs();
      const verdict = evaluate(current!, Date.now(), unschedulableSince, unschedulableGraceMs);
      if (verdict.kind === 'exited') {
        await drainLogs();
        const oom = oomKilled(current!);
        if (oom) hooks.note?.(oom);
        return verdict;
      }
      if (verdict.kind === 'errored') throw new StepErrored(`pod ${name}: ${verdict.message}`, verdict.reason);
      unschedulableSince = verdict.unschedulableSince;

      if (watchDone) {
        // The watch ended: a server-side timeout (normal), 410 Gone, or a network error.
        const err = watchDone.err;
        watchDone = undefined;
        if (err && !isApiAnswer(err)) {
          unreachableSince ??= Date.now();
          if (Date.now() - unreachableSince > rt.apiUnreachableMs) {
            throw new StepErrored(`Kubernetes API server unreachable while watching pod ${name}: ${apiMessage(err)}`, 'APIUnreachable');
          }
          await sleep(500, hooks.abort);
        }
        let rv = current?.metadata?.resourceVersion;
        if (apiCode(err) === 410 || (err && !isApiAnswer(err))) {
          try {
            rt.calls.get++;
            current = await rt.call('get pod', () => rt.core.readNamespacedPod({ name, namespace }), hooks.abort);
            rv = current.metadata?.resourceVersion;
            unreachableSince = undefined;
          } catch (getErr) {
            if (apiCode(getErr) === 404) throw new StepErrored(`pod ${name} was deleted before its task ended`, 'Deleted');
            if (hooks.abort?.aborted) continue;
            throw getErr;
          }
        }
        await startWatch(rv).catch((e: unknown) => (watchDone = { err: e }));
        continue;
      }
      // Sleep until an event, the end of the watch, a signal, or the unschedulable deadline.
      const timeout = unschedulableSince !== undefined ? Math.max(10, unschedulableSince + unschedulableGraceMs - Date.now() + 10) : 60_000;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, timeout);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
        if (pending.length || watchDone || hooks.abort?.aborted || hooks.detach?.aborted) wake();
      });
    }
  } finally {
    clearInterval(heartbeat);
    watchAbort?.abort();
    logs?.abort?.abort();
    hooks.abort?.removeEventListener('abort', onSignal);
    hooks.detach?.removeEventListener('abort', onSignal);
  }
}

async function abortPod(rt: KubeApi, name: string, hooks: StepHooks): Promise<void> {
  const grace = rt.opts.graceSeconds ?? 10;
  hooks.note?.(`aborted: deleting pod ${name} (grace period ${grace}s)`);
  await rt.deletePod(name, grace);
}

/**
 * The activity: runs a task step as a pod, publishing step events and heartbeating; an abort
 * deletes the pod, a worker shutdown leaves it for the next worker of this name.
 */
export async function runKubernetesTask(deps: ActivityDeps, rt: KubeApi, req: RunTaskRequest): Promise<RunTaskResult> {
  const ctx = Context.current();
  const runName = `${req.runId}/${req.step.id}/${req.runKey}`;
  const abort = new AbortController();
  const detach = new AbortController();
  ctx.cancelled.catch(() => (ctx.cancellationDetails?.workerShutdown ? detach.abort() : abort.abort()));
  const key = `${req.buildId}/${req.step.id}`;
  deps.running.add(key);
  const finished = (result: { state: 'succeeded' | 'failed' | 'errored'; exitCode?: number; message?: string }) =>
    deps.publisher.event(
      { type: 'step-finished', buildId: req.buildId, stepId: req.step.id, name: req.step.task, attempt: req.attempt, time: new Date().toISOString(), ...result },
      `${runName}/finished`,
    );
  try {
    if (ctx.info.attempt === 1) {
      await deps.publisher.event(
        { type: 'step-started', buildId: req.buildId, stepId: req.step.id, name: req.step.task, attempt: req.attempt, time: new Date().toISOString() },
        `${runName}/started`,
      );
    }
    let notes = 0;
    const outcome = await runPodTask(rt, req, {
      abort: abort.signal,
      detach: detach.signal,
      heartbeat: (d) => ctx.heartbeat(d),
      // Causeway's own lines in the step's log, as the local runtime writes them.
      note: (text) => {
        deps.log.info({ build: req.buildId, step: req.step.id }, text);
        void deps.publisher.log(req.buildId, req.step.id, 'causeway', Buffer.from(`${text}\n`), `${runName}/note/${ctx.info.attempt}.${notes++}`).catch(() => undefined);
      },
      // Message ids are byte offsets: a re-attached activity reads the log from the start
      // again and JetStream drops what it already has (duplicate window: 10 minutes).
      log: (data, offset) => deps.publisher.log(req.buildId, req.step.id, 'stdout', data, `${runName}/stdout/${offset}`).catch(() => undefined),
    });
    if (outcome.state === 'aborted') {
      await ctx.cancelled;
      throw new Error('unreachable: aborted without cancellation');
    }
    await finished({ state: outcome.state, exitCode: outcome.exitCode });
    return { exitCode: outcome.exitCode, outputs: outcome.outputs };
  } catch (err) {
    if (err instanceof StepErrored) {
      await finished({ state: 'errored', message: err.message });
      throw ApplicationFailure.create({ type: STEP_CONFIG_ERROR, message: err.message, nonRetryable: true, details: [{ reason: err.reason }] });
    }
    if (err instanceof StepDetached) throw ApplicationFailure.create({ type: 'WorkerShutdown', message: err.message });
    throw err;
  } finally {
    deps.running.delete(key);
  }
}
