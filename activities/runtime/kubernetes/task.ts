// The kubernetes runtime's task step: one pod per step run, in the worker's namespace, owned
// by the build's anchor ConfigMap. Idempotent by name (a retried activity finds the pod its
// previous attempt created and re-attaches), watched from a resourceVersion (one GET to
// start or resume, then a watch; never a list per tick), deleted with a grace period on
// abort. See docs/kubernetes.md.
import { Writable } from 'node:stream';
import { serviceEnv } from '../../../common/services';
import { StepDetached, StepErrored } from '../../errors';
import { CredentialResolver } from '../../creds';
import { NO_CREDENTIALS } from '../../deps';
import { mapInputs, resolveTaskConfig } from '../../step/task-config';
import type { ArtifactRef, Artifacts, RunTaskRequest } from '../../types';
import type { ArtifactFile, MappedInput, ResolvedTask, TaskHandle, TaskOutcome } from '../types';
import type { KubeApi } from './api';
import { podArtifact, streamerUrl } from './artifact-ref';
import { readFileOf } from './artifacts';
import { k8s, type V1Pod } from './client';
import { apiCode, apiMessage, isApiAnswer, sleep } from './errors';
import { CONTAINER_LOG_DRAIN_MS, LineCutter, type LogPiece } from './log-pieces';
import { ANNOTATIONS, CONTAINERS, PodSpecError, buildPod, podName, type InputSource } from './pod';
import { containerStarted, evaluate, oomKilled } from './pod-status';

export type StepOutcome = TaskOutcome & { pod: string; reattached: boolean };

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

/** Where each input comes from: the producer pod's IP and the output's path. */
async function inputSources(rt: KubeApi, req: RunTaskRequest, inputs: MappedInput[]): Promise<InputSource[]> {
  const sources: InputSource[] = [];
  for (const { name, path, source, ref } of inputs) {
    if (ref.kind !== 'pod') {
      // Not in a pod: an upload (`-i`) on the worker's disk, which pods fetch from the worker.
      sources.push({ name, path, url: uploadUrl(rt, req, source, ref) });
      continue;
    }
    const ip = await rt.producerIp(ref.pod, `task ${req.step.task}: input ${source}`);
    sources.push({ name, path, url: streamerUrl(ip, ref.path) });
  }
  return sources;
}

/** Where a consumer pod fetches an upload from: the worker's upload server, or an error saying how to get one. */
function uploadUrl(rt: KubeApi, req: RunTaskRequest, source: string, ref: ArtifactRef): string {
  const what = `task ${req.step.task}: input ${source}`;
  if (!rt.uploads?.isUpload(req.buildId, source, ref)) {
    throw new StepErrored(
      `${what} is on worker ${ref.worker}'s disk (${ref.path}), not in a pod of this cluster, and is not an upload this worker could serve`,
    );
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
export async function createOrAttach(
  rt: KubeApi,
  task: ResolvedTask,
  note?: (text: string) => void,
): Promise<{ pod: V1Pod; reattached: boolean }> {
  const { req } = task;
  const name = podName(req.buildId, req.runId, req.step.id, req.runKey, req.step.task);
  try {
    rt.calls.get++;
    const existing = await rt.call('get pod', () => rt.core.readNamespacedPod({ name, namespace: rt.namespace }));
    return { pod: existing, reattached: true };
  } catch (err) {
    if (apiCode(err) !== 404) throw err;
  }
  const resolved = await task.resolve();
  const { config } = resolved;
  const { anchor, tokenSecret } = await rt.ensureAnchor(req.buildId);
  const inputs = await inputSources(rt, req, resolved.inputs);
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
    return {
      pod: await rt.call('create pod', () => rt.core.createNamespacedPod({ namespace: rt.namespace, body: pod })),
      reattached: false,
    };
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

/**
 * Finds the step's pod or creates it; the handle follows it to its end: exit code and outputs,
 * or StepErrored / StepDetached / aborted (its pod deleted with the grace period).
 */
export async function findOrStartPodTask(
  rt: KubeApi,
  task: ResolvedTask,
  hooks: Omit<StepHooks, 'abort' | 'detach'> = {},
): Promise<TaskHandle & { pod: string }> {
  const { pod, reattached } = await createOrAttach(rt, task, hooks.note);
  const name = pod.metadata!.name!;
  if (reattached) hooks.note?.(`re-attached to pod ${name} (phase ${pod.status?.phase ?? 'Pending'})`);
  const outputs: Artifacts = {};
  const declared = JSON.parse(pod.metadata?.annotations?.[ANNOTATIONS.outputs] ?? '[]') as { name: string; path: string }[];
  for (const o of declared) outputs[o.name] = podArtifact(rt.worker, name, o.path);
  const wait = async (signals: { abort: AbortSignal; detach: AbortSignal }): Promise<TaskOutcome> => {
    let result: Awaited<ReturnType<typeof watchPod>>;
    try {
      result = await watchPod(rt, pod, { ...hooks, ...signals });
    } catch (err) {
      // The step is over (image pull error, unschedulable, evicted...): a pod left behind
      // would keep pulling or waiting for a node. Best effort: the anchor takes it anyway.
      if (err instanceof StepErrored && err.reason !== 'APIUnreachable') await rt.deletePod(name).catch(() => undefined);
      throw err;
    }
    if (result.kind === 'aborted') return { state: 'aborted' };
    // A pod without outputs has nothing more to give: delete it now. One with outputs stays
    // (owned by the anchor) until its consumers have fetched; deleting the anchor removes it.
    if (declared.length === 0) await rt.deletePod(name, 0).catch(() => undefined);
    return { state: result.exitCode === 0 ? 'succeeded' : 'failed', exitCode: result.exitCode, outputs };
  };
  return { reattached, pod: name, wait };
}

/** A task's config and inputs, resolved by the step layer's chain with files read from pods (or uploads). */
export function resolvedTask(rt: KubeApi, req: RunTaskRequest): ResolvedTask {
  const reader = { readArtifactFile: (f: ArtifactFile, what: string) => readFileOf(rt, f.buildId, f.ref, f.artifact, f.rel, what) };
  return {
    req,
    resolve: async () => {
      const creds = new CredentialResolver(NO_CREDENTIALS, req.plan, req.varSources);
      const config = await resolveTaskConfig(reader, req.buildId, req.step, req.artifacts, req.services, creds);
      return { config, inputs: mapInputs(req.step, config, req.artifacts) };
    },
  };
}

/** Runs a task step to its end without the activity around it (tests, bench/k8s-api). */
export async function runPodTask(rt: KubeApi, req: RunTaskRequest, hooks: StepHooks = {}): Promise<StepOutcome> {
  const never = new AbortController().signal;
  const handle = await findOrStartPodTask(rt, resolvedTask(rt, req), hooks);
  const outcome = await handle.wait({ abort: hooks.abort ?? never, detach: hooks.detach ?? never });
  return { ...outcome, pod: handle.pod, reattached: handle.reattached };
}

/**
 * Follows the pod with a watch from its resourceVersion until the task container ends,
 * something makes it impossible to run (errored), or the step is aborted / detached.
 */
async function watchPod(
  rt: KubeApi,
  initial: V1Pod,
  hooks: StepHooks,
): Promise<{ kind: 'exited'; exitCode: number } | { kind: 'aborted' }> {
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
      final: (cb) =>
        void send(cutter.end()).then(() => {
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
          throw new StepErrored(
            `pod ${name} was deleted before its task ended${obj.status?.reason ? ` (${obj.status.reason})` : ''}`,
            'Deleted',
          );
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
