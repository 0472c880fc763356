// The kubernetes runtime's access to the API server: its client, calls retried while the server
// cannot be reached, the build's anchor and token, producer pods' IPs, deletions. Tasks,
// services and artifacts all call the API through this class.
import { randomBytes } from 'node:crypto';
import { k8s, loadKubeConfig, type CoreV1Api, type KubeConfig, type KubeConfigSource, type V1Pod } from './client';
import { StepErrored } from '../../errors';
import { apiCode, apiMessage, isApiAnswer, isTransient, sleep } from './errors';
import { LABELS, MANAGED_BY, TOKEN_KEY, anchorName, labelValue, tokenSecretName, type Anchor } from './pod';
import type { Uploads } from './uploads';
import type { ResourceImages } from '../../../schemas/resource-images';

export interface KubernetesRuntimeOptions extends KubeConfigSource {
  /** the worker's namespace: every object of its builds lives there */
  namespace: string;
  /** the worker's name (label `causeway.dev/worker`, and the `worker` of its artifacts) */
  worker: string;
  agentImage?: string;
  /** image of tasks that set neither image_resource nor image (none: such tasks error) */
  defaultImage?: string;
  /** each base resource type's image (CAUSEWAY_RESOURCE_IMAGES): its get/put/check runs in a pod of it */
  resourceImages?: ResourceImages;
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

export class KubeApi {
  readonly kc: KubeConfig;
  readonly core: CoreV1Api;
  readonly namespace: string;
  readonly worker: string;
  /** counts of requests by verb, for tests and bench/k8s-api (no list in steady state) */
  readonly calls = { get: 0, create: 0, delete: 0, watch: 0, watchEvents: 0, list: 0, log: 0 };
  /** the worker's uploads (`-i`): read from its disk, served to pods when it has an upload server */
  uploads?: Uploads;

  constructor(readonly opts: KubernetesRuntimeOptions) {
    this.kc = loadKubeConfig(opts);
    this.core = this.kc.makeApiClient(k8s().CoreV1Api);
    this.namespace = opts.namespace;
    this.worker = opts.worker;
  }

  get apiUnreachableMs(): number {
    return this.opts.apiUnreachableMs ?? 60_000;
  }

  /**
   * Calls the API, retrying while the server cannot be reached (not when it answers with an
   * error) for up to apiUnreachableMs, then errors the step with what went wrong.
   */
  async call<T>(what: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const started = Date.now();
    let delay = 100;
    for (;;) {
      try {
        return await fn();
      } catch (err) {
        if ((isApiAnswer(err) && !isTransient(err)) || signal?.aborted) throw err;
        if (Date.now() - started > this.apiUnreachableMs) {
          const how = isTransient(err) ? `answering ${apiCode(err)}` : 'unreachable';
          throw new StepErrored(
            `Kubernetes API server ${how} for ${Math.round((Date.now() - started) / 1000)}s (${what}): ${apiMessage(err)}`,
            'APIUnreachable',
          );
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
    const labels = {
      [LABELS.managedBy]: MANAGED_BY,
      [LABELS.component]: 'anchor',
      [LABELS.build]: labelValue(buildId),
      [LABELS.worker]: labelValue(this.worker),
    };
    let uid: string | undefined;
    try {
      this.calls.get++;
      uid = (await this.call('get anchor', () => this.core.readNamespacedConfigMap({ name, namespace }))).metadata?.uid;
    } catch (err) {
      if (apiCode(err) !== 404) throw err;
      try {
        this.calls.create++;
        const created = await this.call('create anchor', () =>
          this.core.createNamespacedConfigMap({
            namespace,
            body: { metadata: { name, labels, annotations: { 'causeway.dev/build-id': buildId } }, data: { build: buildId } },
          }),
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
      data = (await this.call('get token secret', () => this.core.readNamespacedSecret({ name, namespace: this.namespace }))).data?.[
        TOKEN_KEY
      ];
    } catch (err) {
      if (apiCode(err) === 404)
        throw new StepErrored(
          `build ${buildId} has no artifact token (Secret ${name} is gone: the build's objects were deleted); run the build again`,
          'TokenGone',
        );
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
      if (apiCode(err) === 404)
        throw new StepErrored(
          `${what}: its producer pod ${pod} is gone (deleted, evicted, or removed with its build's objects); run the build again`,
          'ProducerGone',
        );
      throw err;
    }
    const ip = found.status?.podIP;
    if (!ip || found.metadata?.deletionTimestamp) {
      const state = found.metadata?.deletionTimestamp ? 'being deleted' : `in phase ${found.status?.phase ?? 'Pending'} without an IP`;
      throw new StepErrored(
        `${what}: producer pod ${pod} is ${state}, so its output-streamer cannot serve it; run the build again`,
        'ProducerGone',
      );
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

  /** Deletes a pod (grace period in seconds); false when it was already gone. */
  async deletePod(name: string, graceSeconds = this.opts.graceSeconds ?? 10): Promise<boolean> {
    try {
      this.calls.delete++;
      await this.call('delete pod', () =>
        this.core.deleteNamespacedPod({ name, namespace: this.namespace, gracePeriodSeconds: graceSeconds }),
      );
      return true;
    } catch (err) {
      if (apiCode(err) === 404) return false;
      throw err;
    }
  }
}
