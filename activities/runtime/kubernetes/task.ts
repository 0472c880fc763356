// The kubernetes runtime's task step: one pod per step run, in the worker's namespace, owned
// by the build's anchor ConfigMap. Idempotent by name (a retried activity finds the pod its
// previous attempt created and re-attaches), watched from a resourceVersion (one GET to
// start or resume, then a watch; never a list per tick), deleted with a grace period on
// abort. See docs/kubernetes.md.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { Writable } from 'node:stream';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { interpolateServices, serviceEnv } from '../../../common/services';
import type { TaskConfig } from '../../../schemas/compiled';
import { STEP_CONFIG_ERROR, type ActivityDeps } from '../../deps';
import type { ArtifactRef, Artifacts, RunTaskRequest, RunTaskResult } from '../../types';
import { taskConfigFromFile, type Uploads } from './artifacts';
import { k8s, type CoreV1Api, type KubeConfig, type V1ContainerStatus, type V1Pod } from './client';
import { LineCutter, type LogPiece } from './log-pieces';
import {
  ANNOTATIONS,
  CONTAINERS,
  LABELS,
  MANAGED_BY,
  PodSpecError,
  STREAMER_PORT,
  TOKEN_KEY,
  anchorName,
  buildPod,
  labelValue,
  podName,
  tokenSecretName,
  type Anchor,
  type InputSource,
} from './pod';

export interface KubernetesRuntimeOptions {
  /** the worker's namespace: every object of its builds lives there */
  namespace: string;
  /** the worker's name (label `causeway.dev/worker`, and the `worker` of its artifacts) */
  worker: string;
  /** a kubeconfig file; else in-cluster credentials when in a pod, else the default loading rules */
  kubeconfig?: string;
  /** the kubeconfig context to use (default: its current-context) */
  context?: string;
  /** an already loaded KubeConfig (tests, embedding) instead of kubeconfig/context */
  kubeConfig?: KubeConfig;
  agentImage?: string;
  /** image of tasks that set neither image_resource nor image (none: such tasks error) */
  defaultImage?: string;
  /** the service account step pods run as (they get no token either way) */
  serviceAccountName?: string;
  /** SIGTERM → SIGKILL grace of an aborted step's pod, in seconds (default 10) */
  graceSeconds?: number;
  /** how long a pod may stay unschedulable before the step errors (default 60 s) */
  unschedulableGraceMs?: number;
  /** how long the API server may be unreachable before the step errors (default 60 s) */
  apiUnreachableMs?: number;
  /** the server ends each watch after this long and it is resumed from its resourceVersion (default 300 s) */
  watchTimeoutSeconds?: number;
  /** how long a finished step waits for the end of its log stream (default 5 s) */
  logDrainMs?: number;
  /** how long the worker retries a producer pod's output-streamer that cannot be reached (default 30 s) */
  artifactRetryMs?: number;
}

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

/** How long a finished step waits for the rest of its container's log (the kubelet ends the stream when the container ends). */
const LOG_DRAIN_MS = 5_000;

/** The step cannot run or ended abnormally (Kubernetes' reason in the message): it ends errored. */
export class StepErrored extends Error {
  constructor(
    message: string,
    readonly reason?: string,
  ) {
    super(message);
  }
}

/** The worker shut down; the pod keeps running and a retried activity re-attaches to it. */
export class StepDetached extends Error {}

/** Artifact refs of this runtime: `k8s-pod:<pod>/<path in the work dir>`, served by the pod's output-streamer. */
export const ARTIFACT_SCHEME = 'k8s-pod:';

export function artifactPath(pod: string, path: string): string {
  return `${ARTIFACT_SCHEME}${pod}/${path}`;
}

/** The output-streamer's URL of an output (and of one file in it, for `file:` configs); see the agent protocol. */
export function streamerUrl(ip: string, path: string, file?: string): string {
  const host = ip.includes(':') ? `[${ip}]` : ip;
  const url = `http://${host}:${STREAMER_PORT}/artifacts/${path.split('/').map(encodeURIComponent).join('/')}`;
  return file === undefined ? url : `${url}?file=${encodeURIComponent(file)}`;
}

export function parseArtifactPath(ref: string): { pod: string; path: string } | undefined {
  if (!ref.startsWith(ARTIFACT_SCHEME)) return undefined;
  const rest = ref.slice(ARTIFACT_SCHEME.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return undefined;
  return { pod: rest.slice(0, slash), path: rest.slice(slash + 1) };
}

/** Waiting reasons after which the container will not start by itself. */
const FATAL_WAITING = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'ErrImageNeverPull',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
  'PreCreateHookError',
  'PreStartHookError',
]);

function apiCode(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e?.code === 'number') return e.code;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  return undefined;
}

/** An HTTP answer from the API server (as opposed to not reaching it at all). */
function isApiAnswer(err: unknown): boolean {
  const code = apiCode(err);
  return code !== undefined && code > 0;
}

/** Answers that mean "not now" (throttled, overloaded, timed out): retried like an unreachable server. */
function isTransient(err: unknown): boolean {
  const code = apiCode(err);
  return code === 429 || code === 500 || code === 502 || code === 503 || code === 504;
}

function message(err: unknown): string {
  const e = err as { body?: unknown; message?: string };
  if (e?.body) {
    try {
      const body = typeof e.body === 'string' ? (JSON.parse(e.body) as { message?: string }) : (e.body as { message?: string });
      if (body.message) return body.message;
    } catch {
      /* not JSON */
    }
  }
  return e?.message ?? String(err);
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });

export class KubernetesRuntime {
  readonly kc: KubeConfig;
  readonly core: CoreV1Api;
  readonly namespace: string;
  readonly worker: string;
  /** counts of requests by verb, for tests and bench/k8s-api (no list in steady state) */
  readonly calls = { get: 0, create: 0, delete: 0, watch: 0, watchEvents: 0, list: 0, log: 0 };
  /** the worker's uploads (`-i`): read from its disk, served to pods when it has an upload server */
  uploads?: Uploads;

  constructor(readonly opts: KubernetesRuntimeOptions) {
    const { KubeConfig, CoreV1Api } = k8s();
    let kc = opts.kubeConfig;
    if (!kc) {
      kc = new KubeConfig();
      if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
      else if (process.env.KUBERNETES_SERVICE_HOST && fs.existsSync('/var/run/secrets/kubernetes.io/serviceaccount/token')) kc.loadFromCluster();
      else kc.loadFromDefault();
      if (opts.context) kc.setCurrentContext(opts.context);
    }
    this.kc = kc;
    this.core = kc.makeApiClient(CoreV1Api);
    this.namespace = opts.namespace;
    this.worker = opts.worker;
  }

  private get apiUnreachableMs(): number {
    return this.opts.apiUnreachableMs ?? 60_000;
  }

  /**
   * Calls the API, retrying while the server cannot be reached (not when it answers with an
   * error) for up to apiUnreachableMs, then errors the step with what went wrong.
   */
  private async call<T>(what: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const started = Date.now();
    let delay = 100;
    for (;;) {
      try {
        return await fn();
      } catch (err) {
        if ((isApiAnswer(err) && !isTransient(err)) || signal?.aborted) throw err;
        if (Date.now() - started > this.apiUnreachableMs) {
          const how = isTransient(err) ? `answering ${apiCode(err)}` : 'unreachable';
          throw new StepErrored(`Kubernetes API server ${how} for ${Math.round((Date.now() - started) / 1000)}s (${what}): ${message(err)}`, 'APIUnreachable');
        }
        await sleep(delay, signal);
        delay = Math.min(2000, delay * 2);
      }
    }
  }

  /** anchors this runtime made sure of, by build: a build's later steps cost no anchor calls */
  private readonly anchors = new Map<string, Promise<{ anchor: Anchor; tokenSecret: string }>>();

  /** The build's anchor ConfigMap and artifact-token Secret, created once per build. */
  ensureAnchor(buildId: string): Promise<{ anchor: Anchor; tokenSecret: string }> {
    let known = this.anchors.get(buildId);
    if (!known) {
      known = this.createAnchor(buildId);
      // A failure is not remembered: the next step tries again.
      known.catch(() => this.anchors.delete(buildId));
      this.anchors.set(buildId, known);
    }
    return known;
  }

  private async createAnchor(buildId: string): Promise<{ anchor: Anchor; tokenSecret: string }> {
    const name = anchorName(buildId);
    const namespace = this.namespace;
    const labels = { [LABELS.managedBy]: MANAGED_BY, [LABELS.component]: 'anchor', [LABELS.build]: labelValue(buildId), [LABELS.worker]: labelValue(this.worker) };
    let uid: string | undefined;
    try {
      this.calls.get++;
      uid = (await this.call('get anchor', () => this.core.readNamespacedConfigMap({ name, namespace }))).metadata?.uid;
    } catch (err) {
      if (apiCode(err) !== 404) throw err;
      try {
        this.calls.create++;
        const created = await this.call('create anchor', () =>
          this.core.createNamespacedConfigMap({ namespace, body: { metadata: { name, labels, annotations: { 'causeway.dev/build-id': buildId } }, data: { build: buildId } } }),
        );
        uid = created.metadata?.uid;
      } catch (err2) {
        if (apiCode(err2) !== 409) throw err2;
        this.calls.get++;
        uid = (await this.call('get anchor', () => this.core.readNamespacedConfigMap({ name, namespace }))).metadata?.uid;
      }
    }
    if (!uid) throw new StepErrored(`anchor ConfigMap ${name} has no uid`);
    const anchor = { name, uid };
    const tokenSecret = tokenSecretName(buildId);
    const token = randomBytes(32).toString('hex');
    try {
      this.calls.create++;
      await this.call('create token secret', () =>
        this.core.createNamespacedSecret({
          namespace,
          body: {
            metadata: {
              name: tokenSecret,
              labels: { ...labels, [LABELS.component]: 'artifact-token' },
              ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name, uid, blockOwnerDeletion: true }],
            },
            type: 'Opaque',
            stringData: { [TOKEN_KEY]: token },
          },
        }),
      );
      this.tokens.set(buildId, Promise.resolve(token));
    } catch (err) {
      if (apiCode(err) !== 409) throw err;
    }
    return { anchor, tokenSecret };
  }

  /** build tokens this worker created or read back, by build */
  private readonly tokens = new Map<string, Promise<string>>();

  /**
   * The build's artifact token, which the worker shows producer pods (exports, `file:`) and
   * checks on uploads: remembered from the Secret's creation, else read back from it (a
   * restarted worker; one GET per build).
   */
  buildToken(buildId: string): Promise<string> {
    let known = this.tokens.get(buildId);
    if (!known) {
      known = this.readToken(buildId);
      known.catch(() => this.tokens.delete(buildId));
      this.tokens.set(buildId, known);
    }
    return known;
  }

  private async readToken(buildId: string): Promise<string> {
    const name = tokenSecretName(buildId);
    let data: string | undefined;
    try {
      this.calls.get++;
      data = (await this.call('get token secret', () => this.core.readNamespacedSecret({ name, namespace: this.namespace }))).data?.[TOKEN_KEY];
    } catch (err) {
      if (apiCode(err) === 404) throw new StepErrored(`build ${buildId} has no artifact token (Secret ${name} is gone: the build's objects were deleted); run the build again`, 'TokenGone');
      throw err;
    }
    if (!data) throw new StepErrored(`Secret ${name} has no key ${TOKEN_KEY}: it was changed by hand; run the build again`, 'TokenGone');
    return Buffer.from(data, 'base64').toString('utf8');
  }

  /**
   * The IP of the pod that serves an artifact (one GET), or StepErrored saying why its
   * output-streamer cannot be reached; `what` names the artifact's use for the message.
   */
  async producerIp(pod: string, what: string): Promise<string> {
    let found: V1Pod;
    try {
      this.calls.get++;
      found = await this.call('get producer pod', () => this.core.readNamespacedPod({ name: pod, namespace: this.namespace }));
    } catch (err) {
      if (apiCode(err) === 404) throw new StepErrored(`${what}: its producer pod ${pod} is gone (deleted, evicted, or removed with its build's objects); run the build again`, 'ProducerGone');
      throw err;
    }
    const ip = found.status?.podIP;
    if (!ip || found.metadata?.deletionTimestamp) {
      const state = found.metadata?.deletionTimestamp ? 'being deleted' : `in phase ${found.status?.phase ?? 'Pending'} without an IP`;
      throw new StepErrored(`${what}: producer pod ${pod} is ${state}, so its output-streamer cannot serve it; run the build again`, 'ProducerGone');
    }
    return ip;
  }

  /** Deletes the build's anchor; the garbage collector deletes every object it owns. */
  async deleteBuild(buildId: string): Promise<boolean> {
    this.anchors.delete(buildId);
    this.tokens.delete(buildId);
    try {
      this.calls.delete++;
      await this.call('delete anchor', () =>
        this.core.deleteNamespacedConfigMap({ name: anchorName(buildId), namespace: this.namespace, propagationPolicy: 'Background' }),
      );
      return true;
    } catch (err) {
      if (apiCode(err) === 404) return false;
      throw err;
    }
  }

  /** The inline config, or the task file read from its artifact (a producer pod, or an upload) with the inline config over it. */
  private async resolveConfig(req: RunTaskRequest): Promise<TaskConfig> {
    const { step } = req;
    const config = step.file ? await taskConfigFromFile(this, req) : step.config;
    if (!config) throw new StepErrored(`task ${step.task}: neither config nor file is set`);
    if (!req.services) return config;
    try {
      return interpolateServices(config, req.services);
    } catch (err) {
      throw new StepErrored(`task ${step.task}: ${(err as Error).message}`);
    }
  }

  /** Where each input comes from: the producer pod's IP and the output's path. */
  private async resolveInputs(req: RunTaskRequest, config: TaskConfig): Promise<InputSource[]> {
    const sources: InputSource[] = [];
    for (const input of config.inputs) {
      const source = req.step.inputMapping[input.name] ?? input.name;
      const ref = req.artifacts[source];
      if (!ref) {
        if (input.optional) continue;
        const known = Object.keys(req.artifacts);
        throw new StepErrored(`task ${req.step.task}: missing input \`${input.name}\`: no earlier step produced \`${source}\` (available: ${known.join(', ') || 'none'})`);
      }
      const at = parseArtifactPath(ref.path);
      if (!at) {
        // Not in a pod: an upload (`-i`) on the worker's disk, which pods fetch from the worker.
        sources.push({ name: input.name, path: input.path ?? input.name, url: this.uploadUrl(req, source, ref) });
        continue;
      }
      const ip = await this.producerIp(at.pod, `task ${req.step.task}: input ${source}`);
      sources.push({ name: input.name, path: input.path ?? input.name, url: streamerUrl(ip, at.path) });
    }
    return sources;
  }

  /** Where a consumer pod fetches an upload from: the worker's upload server, or an error saying how to get one. */
  private uploadUrl(req: RunTaskRequest, source: string, ref: ArtifactRef): string {
    const what = `task ${req.step.task}: input ${source}`;
    if (!this.uploads?.isUpload(req.buildId, source, ref)) {
      throw new StepErrored(`${what} is on worker ${ref.worker}'s disk (${ref.path}), not in a pod of this cluster, and is not an upload this worker could serve`);
    }
    const url = this.uploads.urlFor(req.buildId, source);
    if (!url) {
      throw new StepErrored(
        `${what} was uploaded (-i) to worker ${this.worker}, which serves uploads to pods only with an upload address: start it with --upload-address <an address pods can reach> (deploy/worker/deployment.yaml passes its pod IP)`,
      );
    }
    return url;
  }

  /** Creates the step's pod, or finds the one a previous attempt of this activity created. */
  async createOrAttach(req: RunTaskRequest, note?: (text: string) => void): Promise<{ pod: V1Pod; reattached: boolean }> {
    const name = podName(req.buildId, req.runId, req.step.id, req.runKey, req.step.task);
    try {
      this.calls.get++;
      const existing = await this.call('get pod', () => this.core.readNamespacedPod({ name, namespace: this.namespace }));
      return { pod: existing, reattached: true };
    } catch (err) {
      if (apiCode(err) !== 404) throw err;
    }
    const config = await this.resolveConfig(req);
    const { anchor, tokenSecret } = await this.ensureAnchor(req.buildId);
    const inputs = await this.resolveInputs(req, config);
    let pod: V1Pod;
    try {
      pod = buildPod({
        namespace: this.namespace,
        buildId: req.buildId,
        runId: req.runId,
        step: req.step,
        config,
        runKey: req.runKey,
        attempt: req.attempt,
        worker: this.worker,
        anchor,
        tokenSecret,
        defaultImage: this.opts.defaultImage,
        agentImage: this.opts.agentImage,
        inputs,
        serviceEnv: req.services ? serviceEnv(req.services) : undefined,
        terminationGracePeriodSeconds: this.opts.graceSeconds ?? 10,
        serviceAccountName: this.opts.serviceAccountName,
      });
    } catch (err) {
      if (err instanceof PodSpecError) throw new StepErrored(`task ${req.step.task}: ${err.message}`);
      throw err;
    }
    if (req.step.image && config.image_resource) note?.(`image ${req.step.image} (the step's image) is used instead of image_resource`);
    try {
      this.calls.create++;
      return { pod: await this.call('create pod', () => this.core.createNamespacedPod({ namespace: this.namespace, body: pod })), reattached: false };
    } catch (err) {
      // Created by a concurrent attempt between our GET and POST: attach to it.
      if (apiCode(err) === 409) {
        this.calls.get++;
        return { pod: await this.call('get pod', () => this.core.readNamespacedPod({ name, namespace: this.namespace })), reattached: true };
      }
      if (apiCode(err) === 422 || apiCode(err) === 400 || apiCode(err) === 403) {
        throw new StepErrored(`task ${req.step.task}: Kubernetes refused pod ${name}: ${message(err)}`, 'Invalid');
      }
      throw err;
    }
  }

  /** Deletes a pod (grace period in seconds); false when it was already gone. */
  async deletePod(name: string, graceSeconds = this.opts.graceSeconds ?? 10): Promise<boolean> {
    try {
      this.calls.delete++;
      await this.call('delete pod', () => this.core.deleteNamespacedPod({ name, namespace: this.namespace, gracePeriodSeconds: graceSeconds }));
      return true;
    } catch (err) {
      if (apiCode(err) === 404) return false;
      throw err;
    }
  }

  /** Deletes the producer pods holding these artifacts (no step reads them any more). */
  async releaseArtifacts(refs: ArtifactRef[]): Promise<void> {
    const pods = new Set(refs.flatMap((ref) => parseArtifactPath(ref.path)?.pod ?? []));
    for (const pod of pods) await this.deletePod(pod, 0);
  }

  /** Runs a task step to its end: exit code, outputs, or StepErrored / StepDetached / aborted. */
  async runStep(req: RunTaskRequest, hooks: StepHooks = {}): Promise<StepOutcome> {
    const { pod, reattached } = await this.createOrAttach(req, hooks.note);
    const name = pod.metadata!.name!;
    if (reattached) hooks.note?.(`re-attached to pod ${name} (phase ${pod.status?.phase ?? 'Pending'})`);
    const outputs: Artifacts = {};
    const declared = JSON.parse(pod.metadata?.annotations?.[ANNOTATIONS.outputs] ?? '[]') as { name: string; path: string }[];
    for (const o of declared) outputs[o.name] = { worker: this.worker, path: artifactPath(name, o.path) };

    let result: Awaited<ReturnType<KubernetesRuntime['watchPod']>>;
    try {
      result = await this.watchPod(pod, hooks);
    } catch (err) {
      // The step is over (image pull error, unschedulable, evicted...): a pod left behind
      // would keep pulling or waiting for a node. Best effort: the anchor takes it anyway.
      if (err instanceof StepErrored && err.reason !== 'APIUnreachable') await this.deletePod(name).catch(() => undefined);
      throw err;
    }
    if (result.kind === 'aborted') return { state: 'aborted', pod: name, reattached };
    // A pod without outputs has nothing more to give: delete it now. One with outputs stays
    // (owned by the anchor) until its consumers have fetched; deleting the anchor removes it.
    if (declared.length === 0) await this.deletePod(name, 0).catch(() => undefined);
    return { state: result.exitCode === 0 ? 'succeeded' : 'failed', exitCode: result.exitCode, outputs, pod: name, reattached };
  }

  /**
   * Follows the pod with a watch from its resourceVersion until the task container ends,
   * something makes it impossible to run (errored), or the step is aborted / detached.
   */
  private async watchPod(initial: V1Pod, hooks: StepHooks): Promise<{ kind: 'exited'; exitCode: number } | { kind: 'aborted' }> {
    const name = initial.metadata!.name!;
    const namespace = this.namespace;
    const unschedulableGraceMs = this.opts.unschedulableGraceMs ?? 60_000;
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
      this.calls.log++;
      const { Log } = k8s();
      new Log(this.kc)
        .log(namespace, name, CONTAINERS.task, sink, { follow: true })
        .then((abort) => {
          if (logs) logs.abort = abort;
        })
        .catch((err: unknown) => {
          hooks.note?.(`the task's log is not available: ${message(err)}`);
          ended();
        });
    };
    const drainLogs = async () => {
      if (!logs) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([logs.done, new Promise<void>((r) => (timer = setTimeout(r, this.opts.logDrainMs ?? LOG_DRAIN_MS)))]);
      clearTimeout(timer);
      logs.abort?.abort();
    };

    const startWatch = async (resourceVersion: string | undefined) => {
      watchDone = undefined;
      this.calls.watch++;
      const { Watch } = k8s();
      watchAbort = await new Watch(this.kc).watch(
        `/api/v1/namespaces/${namespace}/pods`,
        {
          fieldSelector: `metadata.name=${name}`,
          resourceVersion,
          allowWatchBookmarks: true,
          timeoutSeconds: this.opts.watchTimeoutSeconds ?? 300,
        },
        (type: string, obj: unknown) => {
          this.calls.watchEvents++;
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
          await this.abortPod(name, hooks);
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
        if (!logs && taskStarted(current)) startLogs();
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
            if (Date.now() - unreachableSince > this.apiUnreachableMs) {
              throw new StepErrored(`Kubernetes API server unreachable while watching pod ${name}: ${message(err)}`, 'APIUnreachable');
            }
            await sleep(500, hooks.abort);
          }
          let rv = current?.metadata?.resourceVersion;
          if (apiCode(err) === 410 || (err && !isApiAnswer(err))) {
            try {
              this.calls.get++;
              current = await this.call('get pod', () => this.core.readNamespacedPod({ name, namespace }), hooks.abort);
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

  private async abortPod(name: string, hooks: StepHooks): Promise<void> {
    const grace = this.opts.graceSeconds ?? 10;
    hooks.note?.(`aborted: deleting pod ${name} (grace period ${grace}s)`);
    await this.deletePod(name, grace);
  }
}

type Verdict =
  | { kind: 'exited'; exitCode: number }
  | { kind: 'errored'; reason: string; message: string }
  | { kind: 'running'; unschedulableSince?: number };

/** The task container is running or has run: there is a log to read. */
function taskStarted(pod: V1Pod | undefined): boolean {
  const state = findStatus(pod?.status?.containerStatuses, CONTAINERS.task)?.state;
  return !!(state?.running || state?.terminated);
}

/** The kubelet's word that the task went over its memory limit (exit 137 alone does not say why). */
export function oomKilled(pod: V1Pod): string | undefined {
  const task = findStatus(pod.status?.containerStatuses, CONTAINERS.task);
  if (task?.state?.terminated?.reason !== 'OOMKilled') return undefined;
  const limit = pod.spec?.containers.find((c) => c.name === CONTAINERS.task)?.resources?.limits?.memory;
  return `container task was OOMKilled: it used more memory than its limit${limit ? ` (${limit} bytes, container_limits.memory)` : ''}`;
}

function findStatus(statuses: V1ContainerStatus[] | undefined, name: string): V1ContainerStatus | undefined {
  return statuses?.find((s) => s.name === name);
}

/** Maps a pod's phase, conditions and container statuses to the step's state. */
export function evaluate(pod: V1Pod, now: number, unschedulableSince: number | undefined, unschedulableGraceMs: number): Verdict {
  const status = pod.status ?? {};
  const task = findStatus(status.containerStatuses, CONTAINERS.task);
  const terminated = task?.state?.terminated;
  if (terminated) return { kind: 'exited', exitCode: terminated.exitCode ?? 1 };

  const fetcher = findStatus(status.initContainerStatuses, CONTAINERS.fetcher);
  const ft = fetcher?.state?.terminated;
  if (ft && ft.exitCode !== 0) {
    return { kind: 'errored', reason: ft.reason ?? 'InputFetchFailed', message: `${CONTAINERS.fetcher} failed (exit ${ft.exitCode}${ft.reason ? `, ${ft.reason}` : ''})${ft.message ? `: ${ft.message}` : ''}` };
  }
  for (const s of [...(status.initContainerStatuses ?? []), ...(status.containerStatuses ?? [])]) {
    const waiting = s.state?.waiting;
    if (waiting?.reason && FATAL_WAITING.has(waiting.reason)) {
      return { kind: 'errored', reason: waiting.reason, message: `container ${s.name}: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}` };
    }
  }
  if (status.phase === 'Failed' || status.phase === 'Succeeded') {
    const reason = status.reason ?? status.phase;
    return { kind: 'errored', reason, message: `pod ${status.phase.toLowerCase()} without the task's exit status: ${reason}${status.message ? `: ${status.message}` : ''}` };
  }
  const scheduled = status.conditions?.find((c) => c.type === 'PodScheduled');
  if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
    const since = unschedulableSince ?? now;
    if (now - since >= unschedulableGraceMs) {
      return { kind: 'errored', reason: 'Unschedulable', message: `unschedulable: ${scheduled.message ?? 'no node fits'}` };
    }
    return { kind: 'running', unschedulableSince: since };
  }
  return { kind: 'running' };
}

/**
 * The activity: runs a task step as a pod, publishing step events and heartbeating; an abort
 * deletes the pod, a worker shutdown leaves it for the next worker of this name.
 */
export async function runKubernetesTask(deps: ActivityDeps, rt: KubernetesRuntime, req: RunTaskRequest): Promise<RunTaskResult> {
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
    const outcome = await rt.runStep(req, {
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
