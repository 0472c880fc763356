// The kubernetes runtime's task step: one pod per step run, in the worker's namespace, owned
// by the build's anchor ConfigMap. Idempotent by name (a retried activity finds the pod its
// previous attempt created and re-attaches), followed through the runtime's shared pod
// informer (pod-watcher.ts: one list and one watch for all its pods, never a watch per pod),
// deleted with a grace period on abort. See docs/kubernetes.md.
import { constants as osConstants } from 'node:os';
import { Writable } from 'node:stream';
import { serviceEnv } from '../../../common/services';
import { StepErrored } from '../../errors';
import { followTask } from '../../step/follow';
import { CredentialResolver, lookupPipeline } from '../../creds';
import { NO_CREDENTIALS } from '../../deps';
import { mapInputs, readArtifactText, resolveTaskConfig } from '../../step/task-config';
import type { Artifacts, RunTaskRequest } from '../../types';
import type { ArtifactFile, LogPiece, ResolvedTask, Runtime, StepIo, TaskExit, TaskHandle, TaskSignal } from '../types';
import type { KubeApi } from './api';
import { inputSources, podArtifact } from './artifact-ref';
import { readFileOf } from './artifacts';
import { k8s, type V1Pod, type V1Secret } from './client';
import { apiCode, apiMessage } from './errors';
import { CONTAINER_LOG_DRAIN_MS, LogBuffer } from './log-pieces';
import { ANNOTATIONS, CONTAINERS, PodSpecError, buildPod, buildStepEnvSecret, podName, type PodInput } from './pod';
import { containerStarted, evaluate, oomKilled } from './pod-status';
import { podInformer } from './pod-watcher';

/** How a step run by runPodTask ended: exit code and outputs, or aborted; which pod ran it. */
export type StepOutcome = ({ state: 'succeeded' | 'failed'; exitCode: number; outputs: Artifacts } | { state: 'aborted' }) & {
  pod: string;
  reattached: boolean;
};

/** What runPodTask's caller lets the runtime see: abort, detach (worker shutdown), notes, the log. */
export interface StepHooks {
  /** the step is aborted: delete its pod (with the grace period) and end */
  abort?: AbortSignal;
  /** the worker is going away: leave the pod running for the next worker, end with StepDetached */
  detach?: AbortSignal;
  note?: (text: string) => void;
  /** the task container's output (stdout and stderr as the kubelet merges them), in order, with its byte offset */
  log?: (data: Buffer, offset: number) => Promise<void>;
}

/**
 * The `repository` and `digest` files of the artifact the step's `image:` names, when one is in
 * scope: a kubelet pulls images, it cannot run a rootfs from a pod's output, so the image a get
 * fetched runs by its digest (docs/kubernetes.md).
 */
async function imageArtifactOf(rt: KubeApi, req: RunTaskRequest): Promise<{ repository: string; digest: string } | undefined> {
  const name = req.step.image;
  const ref = name === undefined ? undefined : req.artifacts[name];
  if (name === undefined || !ref) return undefined;
  const what = `task ${req.step.task}: image ${name} (the kubernetes runtime runs the image a get fetched by its repository and digest files)`;
  const [repository, digest] = await Promise.all(
    ['repository', 'digest'].map((rel) => readArtifactText(artifactReader(rt), { buildId: req.buildId, artifact: name, ref, rel }, what)),
  );
  return { repository, digest };
}

/** Creates the step's pod, or finds the one a previous attempt of this activity created. */
export async function createOrAttach(
  rt: KubeApi,
  task: ResolvedTask,
  note?: (text: string) => void,
): Promise<{ pod: V1Pod; reattached: boolean }> {
  const { req } = task;
  const name = podName(req.buildId, req.runId, req.step.id, req.runKey, req.step.task);
  // A retry looks first: its pod may be running, and resolving again would read its config and inputs for nothing.
  if (!task.firstAttempt) {
    try {
      rt.calls.get++;
      const existing = await rt.call('get pod', () => rt.core.readNamespacedPod({ name, namespace: rt.namespace }));
      return { pod: existing, reattached: true };
    } catch (err) {
      if (apiCode(err) !== 404) throw err;
    }
  }
  const resolved = await task.resolve();
  const { config } = resolved;
  const { anchor, tokenSecret } = await rt.ensureAnchor(req.buildId);
  const inputs = await inputSources(rt, req.buildId, `task ${req.step.task}`, resolved.inputs);
  let pod: V1Pod;
  let envSecret: V1Secret | undefined;
  try {
    const input: PodInput = {
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
      imageArtifact: await imageArtifactOf(rt, req),
      agentImage: rt.opts.agentImage,
      inputs,
      serviceEnv: req.services ? serviceEnv(req.services) : undefined,
      terminationGracePeriodSeconds: rt.opts.graceSeconds ?? 10,
      serviceAccountName: rt.opts.serviceAccountName,
      secretValues: resolved.secrets,
    };
    pod = buildPod(input);
    envSecret = buildStepEnvSecret(input);
  } catch (err) {
    if (err instanceof PodSpecError) throw new StepErrored(`task ${req.step.task}: ${err.message}`);
    throw err;
  }
  if (envSecret) await createEnvSecret(rt, envSecret, req.step.task);
  if (req.step.image && config.image_resource) note?.(`image ${req.step.image} (the step's image) is used instead of image_resource`);
  try {
    rt.calls.create++;
    return {
      pod: await rt.call('create pod', () => rt.core.createNamespacedPod({ namespace: rt.namespace, body: pod })),
      reattached: false,
    };
  } catch (err) {
    // Created by another attempt (between our GET and POST, or before a first attempt's POST): attach to it.
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

/** The step's Secret of env vars, before its pod (which cannot start without it); an earlier attempt's is the same. */
async function createEnvSecret(rt: KubeApi, body: V1Secret, task: string): Promise<void> {
  try {
    rt.calls.create++;
    await rt.call('create env secret', () => rt.core.createNamespacedSecret({ namespace: rt.namespace, body }));
  } catch (err) {
    if (apiCode(err) === 409) return;
    if (apiCode(err) === 422 || apiCode(err) === 400 || apiCode(err) === 403)
      throw new StepErrored(`task ${task}: Kubernetes refused Secret ${body.metadata?.name}: ${apiMessage(err)}`, 'Invalid');
    throw err;
  }
}

/**
 * Finds the step's pod or creates it; the handle follows it to its end (exit code and outputs,
 * or StepErrored), reads the task container's log and deletes the pod on a signal.
 */
export async function findOrStartPodTask(
  rt: KubeApi,
  task: ResolvedTask,
  io: StepIo = { note: () => undefined },
): Promise<TaskHandle & { pod: string }> {
  const { pod, reattached } = await createOrAttach(rt, task, io.note);
  const name = pod.metadata!.name!;
  if (reattached) io.note(`re-attached to pod ${name} (phase ${pod.status?.phase ?? 'Pending'})`);
  const outputs: Artifacts = {};
  const declared = JSON.parse(pod.metadata?.annotations?.[ANNOTATIONS.outputs] ?? '[]') as { name: string; path: string }[];
  for (const o of declared) outputs[o.name] = podArtifact(rt.worker, name, o.path);
  const log = new PodLog(rt, name, io.note);
  let signalled: TaskSignal | undefined;
  const wait = async (stop: AbortSignal): Promise<TaskExit | undefined> => {
    let exitCode: number | undefined;
    try {
      exitCode = await watchPod(rt, pod, log, stop, () => signalled !== undefined, io.note);
    } catch (err) {
      // The step is over (image pull error, unschedulable, evicted...): a pod left behind
      // would keep pulling or waiting for a node. Best effort: the anchor takes it anyway.
      if (err instanceof StepErrored && err.reason !== 'APIUnreachable') await rt.deletePod(name).catch(() => undefined);
      throw err;
    } finally {
      log.close();
    }
    if (exitCode === undefined) return undefined;
    // A pod without outputs has nothing more to give: delete it now, without holding the step's
    // end for the API's answer (the anchor removes a pod whose delete was lost). One with outputs
    // stays (owned by the anchor) until its consumers have fetched; deleting the anchor removes it.
    if (declared.length === 0 && !signalled) void rt.deletePod(name, 0).catch(() => undefined);
    return { exitCode, outputs };
  };
  const signal = async (sig: TaskSignal) => {
    signalled = sig;
    // The kubelet sends SIGTERM, then SIGKILL after the grace period: deleting the pod is the signal.
    const grace = sig === 'SIGKILL' ? 0 : (rt.opts.graceSeconds ?? 10);
    if (await rt.deletePod(name, grace)) io.note(`deleting pod ${name} (grace period ${grace}s)`);
  };
  return { reattached, pod: name, wait, readLogs: async (from) => log.read(from.stdout ?? 0), signal };
}

/** Files of artifacts read from pods (or uploads), for the step layer's readArtifactText. */
function artifactReader(rt: KubeApi): Pick<Runtime, 'readArtifactFile'> {
  return { readArtifactFile: (f: ArtifactFile, what: string) => readFileOf(rt, f.buildId, f.ref, f.artifact, f.rel, what) };
}

/** A task's config and inputs, resolved by the step layer's chain with files read from pods (or uploads). */
export function resolvedTask(rt: KubeApi, req: RunTaskRequest): ResolvedTask {
  const reader = artifactReader(rt);
  return {
    req,
    resolve: async () => {
      const creds = new CredentialResolver(NO_CREDENTIALS, lookupPipeline(req), req.varSources);
      const config = await resolveTaskConfig(reader, req.buildId, req.step, req.artifacts, req.services, creds);
      return { config, inputs: mapInputs(req.step, config, req.artifacts) };
    },
  };
}

/** Runs a task step to its end without the activity around it (tests, bench/k8s-api): the step layer's followTask, the hooks its sink. */
export async function runPodTask(rt: KubeApi, req: RunTaskRequest, hooks: StepHooks = {}): Promise<StepOutcome> {
  const never = new AbortController().signal;
  const note = hooks.note ?? (() => undefined);
  const handle = await findOrStartPodTask(rt, resolvedTask(rt, req), { note });
  const outcome = await followTask(handle, {
    publish: async (piece) => {
      await hooks.log?.(piece.data, piece.offset);
      return piece.data.length;
    },
    beat: () => undefined,
    note,
    warn: () => undefined,
    abort: hooks.abort ?? never,
    detach: hooks.detach ?? never,
    killGraceMs: (rt.opts.graceSeconds ?? 10) * 1000,
  });
  const ran = { pod: handle.pod, reattached: handle.reattached };
  if (outcome === 'aborted') return { state: 'aborted', ...ran };
  return { state: outcome.exitCode === 0 ? 'succeeded' : 'failed', ...outcome, ...ran };
}

/**
 * The task container's log, followed from the Log API once the container has started and cut
 * into messages at line ends; readLogs takes them from an offset. A failure to get it costs the
 * live view only (as a NATS outage does), never the step.
 */
class PodLog {
  private readonly buffer = new LogBuffer({ countLinesTo: REREAD_MAX_LINES });
  private done?: Promise<void>;
  /** the follow stream reached the log's end (not an error, nor our abort) */
  private whole = false;
  private closed = false;
  /** the follow request was refused (and that noted) */
  private refused = false;
  private abort?: AbortController;

  constructor(
    private readonly rt: KubeApi,
    private readonly pod: string,
    private readonly note: (text: string) => void,
  ) {}

  get started(): boolean {
    return this.done !== undefined;
  }

  start(): void {
    let ended: () => void = () => undefined;
    this.done = new Promise<void>((resolve) => (ended = resolve));
    const sink = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        if (!this.closed) this.buffer.push(chunk);
        cb();
      },
      final: (cb) => {
        if (!this.closed) {
          this.buffer.end();
          this.whole = true;
        }
        ended();
        cb();
      },
    });
    sink.on('error', () => ended());
    sink.on('close', () => ended());
    this.rt.calls.log++;
    const { Log } = k8s();
    new Log(this.rt.kc)
      .log(this.rt.namespace, this.pod, CONTAINERS.task, sink, { follow: true })
      .then((abort) => {
        this.abort = abort;
        // The body goes on after an abort; a body that breaks off never ends the sink: either way drain's bound ends the wait.
        if (this.closed) abort.abort();
      })
      .catch((err: unknown) => {
        this.refused = true;
        this.note(`the task's log is not available: ${apiMessage(err)}`);
        ended();
      });
  }

  /**
   * The container ended: its log stream ends too (the kubelet ends it), or goes quiet. A stream
   * that did not reach the end (slow at load, broken off, refused) would lose the last lines
   * silently: the log of an ended container is complete, so one plain read gives what is missing.
   * The kubelet ends a stream that has caught up only at its next look at the container, up to a
   * second after the last write (cri-client's logForceCheckPeriod), so a short log is read again
   * at once, without waiting for its stream: the next step's pod is created that much sooner. A
   * long one is not: the kubelet sends ~40,000 lines a second here, flushing each, so a stream
   * still sending is waited for, and a second read of a long log would cost as much again.
   */
  async drain(): Promise<void> {
    if (!this.done) return;
    if (this.buffer.lines > REREAD_MAX_LINES) {
      const quiet = this.rt.opts.logDrainMs ?? CONTAINER_LOG_DRAIN_MS;
      for (let ended = false; !ended;) {
        const seen = this.buffer.received;
        let timer: NodeJS.Timeout | undefined;
        ended = await Promise.race([this.done.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), quiet)))]);
        clearTimeout(timer);
        if (this.buffer.received === seen) break;
      }
    }
    this.close();
    if (!this.whole) await this.readRest();
    // All there will be: an unfinished last line is sent as it is, also when the rest could not be read.
    this.buffer.end();
  }

  /**
   * The messages from byte `from` on (those before it were taken). They end at line ends however
   * the kubelet chunked the stream: redaction sees whole lines.
   */
  read(from: number): LogPiece[] {
    return this.buffer.read(from).map((p) => ({ stream: 'stdout', ...p }));
  }

  close(): void {
    this.closed = true;
    this.abort?.abort();
  }

  /** The ended container's whole log, read once more: the bytes past those the stream gave. */
  private async readRest(): Promise<void> {
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        chunks.push(chunk);
        cb();
      },
    });
    const finished = new Promise<void>((resolve, reject) => {
      sink.on('finish', resolve);
      sink.on('error', reject);
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      this.rt.calls.log++;
      const { Log } = k8s();
      const abort = await new Log(this.rt.kc).log(this.rt.namespace, this.pod, CONTAINERS.task, sink, { follow: false });
      const bound = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          abort.abort();
          reject(new Error(`no answer within ${REST_READ_MS / 1000}s`));
        }, REST_READ_MS);
      });
      await Promise.race([finished, bound]);
    } catch (err) {
      if (!this.refused) this.note(`the end of the task's log could not be read: ${apiMessage(err)}`);
      return;
    } finally {
      clearTimeout(timer);
    }
    this.buffer.push(Buffer.concat(chunks).subarray(this.buffer.received));
  }
}

/** How long the plain read of an ended container's log may take. */
const REST_READ_MS = 15_000;
/** A followed log of up to this many lines is read again whole once its container has ended, not waited for. */
const REREAD_MAX_LINES = 2_000;

/**
 * Follows the pod through the runtime's pod informer until the task container ends (its exit
 * code), something makes it impossible to run (StepErrored), or `stop` (undefined).
 */
async function watchPod(
  rt: KubeApi,
  initial: V1Pod,
  log: PodLog,
  stop: AbortSignal,
  signalled: () => boolean,
  note: (text: string) => void,
): Promise<number | undefined> {
  const name = initial.metadata!.name!;
  const unschedulableGraceMs = rt.opts.unschedulableGraceMs ?? 60_000;
  let unschedulableSince: number | undefined;
  let ended: V1Pod | undefined;
  const exit = await podInformer(rt).follow(
    name,
    (pod) => {
      // A pod deleted by a signal has ended as the kubelet ends it; deleted otherwise, the step errors.
      if (!pod) {
        if (signalled()) return 128 + osConstants.signals.SIGKILL;
        throw new StepErrored(`pod ${name} was deleted before its task ended`, 'Deleted');
      }
      if (!log.started && containerStarted(pod, CONTAINERS.task)) log.start();
      const verdict = evaluate(pod, Date.now(), unschedulableSince, unschedulableGraceMs);
      if (verdict.kind === 'errored') throw new StepErrored(`pod ${name}: ${verdict.message}`, verdict.reason);
      if (verdict.kind === 'running') {
        unschedulableSince = verdict.unschedulableSince;
        return undefined;
      }
      ended = pod;
      return verdict.exitCode;
    },
    { signal: stop },
    initial,
  );
  if (exit === 'aborted') return undefined;
  if (ended) {
    await log.drain();
    const oom = oomKilled(ended);
    if (oom) note(oom);
  }
  return exit;
}
