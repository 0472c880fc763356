// Services on the kubernetes runtime: a pod plus a Kubernetes Service selecting it, both owned
// by the build's anchor; startup_probe becomes the pod's startupProbe (exec), or without one a
// TCP startupProbe on the primary port; the address steps and sibling services get is the
// Service's DNS name; the service container's log goes to NATS on the service's subject; a
// NetworkPolicy per build lets only the build's own pods reach its services.
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { publishLog } from '../../../common/nats';
import { interpolateServices, siblingScope, type ServiceAddress } from '../../../common/services';
import type { ServiceConfig } from '../../../schemas/compiled';
import { subjects, type LogStreamName } from '../../../schemas/messages';
import { PROBE_DEFAULTS } from '../../../schemas/services';
import type { ActivityDeps } from '../../deps';
import type { ProbeServiceRequest, ServiceLogOffsets, ServiceRef, StartServiceRequest, StopServiceRequest, SuperviseServiceRequest } from '../../types';
import { serviceConfigFromFile } from './artifacts';
import { k8s, type K8s, type V1Pod } from './client';
import { apiCode, apiMessage } from './errors';
import { CONTAINER_LOG_DRAIN_MS, LineCutter, type LogPiece } from './log-pieces';
import { CONTAINERS, LABELS, MANAGED_BY, PodSpecError, dnsSlug, imageReference, labelValue, type Anchor } from './pod';
import { containerStarted, serviceEnd, serviceReadiness } from './pod-status';
import type { KubeApi } from './api';

export const SERVICE_FAILED = 'ServiceFailed';
export const SERVICE_LABEL = 'causeway.dev/service';
const NO_OFFSETS: ServiceLogOffsets = { stdout: 0, stderr: 0, notes: 0 };
/** lines of a service's output in the message of a service that failed, as on the local runtime */
const TAIL_LINES = 20;
/** without a startup_probe, how long the primary port may take to open: as long as the local runtime waits */
const PORTS_TIMEOUT_SECONDS = 2 * PROBE_DEFAULTS.failureThreshold * PROBE_DEFAULTS.periodSeconds;

function failed(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: SERVICE_FAILED, message, nonRetryable: true });
}

/** Pod and Service name: readable service name + a hash of build, run, scope step, attempt key and name. */
export function serviceObjectName(ref: ServiceRef): string {
  const h = createHash('sha256').update([ref.buildId, ref.runId, ref.scopeStepId, ref.runKey, ref.name].join('\0')).digest('hex').slice(0, 12);
  return `cw-svc-${dnsSlug(ref.name, 63 - 7 - 1 - h.length) || 'svc'}-${h}`;
}

/** Where a service answers inside the cluster: its Service's DNS name. */
export function serviceDnsName(namespace: string, ref: ServiceRef): string {
  return `${serviceObjectName(ref)}.${namespace}.svc`;
}

/**
 * The addresses a service's spec is interpolated with: the services its step starts (itself
 * included) at their Services' DNS names, which are known before they exist; the enclosing
 * steps' services as their starts returned them.
 */
export function serviceScope(namespace: string, req: StartServiceRequest): Record<string, ServiceAddress> {
  return siblingScope(req.scope, req.siblings, (name) => serviceDnsName(namespace, { ...req, name }));
}

export function primaryPort(ports: { name: string }[]): string | undefined {
  return ports.find((p) => p.name === 'default')?.name ?? ports[0]?.name;
}

/** Port names in a Service: DNS labels of at most 15 characters. */
function portName(name: string, i: number): string {
  return dnsSlug(name, 15) || `p${i}`;
}

export interface ServiceObjectsInput {
  namespace: string;
  ref: ServiceRef;
  config: ServiceConfig;
  image?: string;
  params: Record<string, string>;
  worker: string;
  anchor: Anchor;
  gracePeriodMs: number;
}

/** Pure: the service's pod and its Kubernetes Service. */
export function buildServiceObjects(input: ServiceObjectsInput): { pod: V1Pod; service: K8s.V1Service } {
  const { config, ref } = input;
  const name = serviceObjectName(ref);
  const image = input.image ?? (config.image_resource ? imageReference(config.image_resource) : undefined);
  if (!image) throw new PodSpecError(`service ${ref.name}: no image: set image_resource (type registry-image) or the service's image`);
  if (config.ports.length === 0) throw new PodSpecError(`service ${ref.name}: no ports`);
  const primary = config.ports.find((p) => p.name === primaryPort(config.ports))!;
  const probe = config.startup_probe;
  const labels = {
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.component]: 'service',
    [LABELS.build]: labelValue(ref.buildId),
    [LABELS.worker]: labelValue(input.worker),
    [SERVICE_LABEL]: name,
  };
  const owner = { apiVersion: 'v1', kind: 'ConfigMap', name: input.anchor.name, uid: input.anchor.uid, blockOwnerDeletion: true };
  const env = { ...config.params, ...input.params };
  // The probe the local runtime runs in the service's network, as Kubernetes runs it
  // (Kubernetes' periods are whole seconds). Without one: started, and Ready, when the primary
  // port accepts connections; a port that never opens gets the container killed, so the
  // service fails with its last lines instead of leaving the step waiting.
  const startupProbe: K8s.V1Probe = probe
    ? {
        exec: { command: [probe.run.path, ...probe.run.args] },
        failureThreshold: probe.failureThreshold,
        periodSeconds: Math.max(1, Math.ceil(probe.periodSeconds)),
        timeoutSeconds: Math.max(1, Math.ceil(probe.timeoutSeconds)),
      }
    : { tcpSocket: { port: primary.number }, periodSeconds: 1, failureThreshold: PORTS_TIMEOUT_SECONDS };
  const pod: V1Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: input.namespace,
      labels,
      annotations: { 'causeway.dev/service-name': ref.name, 'causeway.dev/scope-step-id': ref.scopeStepId, 'causeway.dev/run-key': ref.runKey },
      ownerReferences: [owner],
    },
    spec: {
      restartPolicy: 'Never',
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      terminationGracePeriodSeconds: Math.max(0, Math.ceil(input.gracePeriodMs / 1000)),
      containers: [
        {
          name: CONTAINERS.service,
          image,
          command: [config.run.path],
          args: config.run.args,
          workingDir: config.run.dir,
          env: Object.keys(env)
            .sort()
            .map((k) => ({ name: k, value: env[k] })),
          ports: config.ports.map((p, i) => ({ name: portName(p.name, i), containerPort: p.number, protocol: 'TCP' })),
          startupProbe,
        },
      ],
    },
  };
  const service: K8s.V1Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: input.namespace, labels, ownerReferences: [owner] },
    spec: {
      selector: { [SERVICE_LABEL]: name },
      ports: config.ports.map((p, i) => ({ name: portName(p.name, i), port: p.number, targetPort: p.number, protocol: 'TCP' })),
    },
  };
  return { pod, service };
}

/** Pure: only the build's own pods may reach its services. */
export function buildNetworkPolicy(namespace: string, buildId: string, anchor: Anchor): K8s.V1NetworkPolicy {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: {
      name: `${anchor.name}-services`.slice(0, 253),
      namespace,
      labels: { [LABELS.managedBy]: MANAGED_BY, [LABELS.build]: labelValue(buildId) },
      ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: anchor.name, uid: anchor.uid, blockOwnerDeletion: true }],
    },
    spec: {
      podSelector: { matchLabels: { [LABELS.build]: labelValue(buildId), [LABELS.component]: 'service' } },
      policyTypes: ['Ingress'],
      ingress: [{ _from: [{ podSelector: { matchLabels: { [LABELS.build]: labelValue(buildId) } } }] }],
    },
  };
}

async function createTolerant(create: () => Promise<unknown>): Promise<void> {
  try {
    await create();
  } catch (err) {
    if (apiCode(err) !== 409) throw err;
  }
}

/** The spec with its ((.svc:...)) refs filled in; a ref nothing in scope answers fails the service. */
function withAddresses<T>(name: string, value: T, scope: Record<string, ServiceAddress>): T {
  try {
    return interpolateServices(value, scope);
  } catch (err) {
    throw failed(`service ${name}: ${(err as Error).message}`);
  }
}

/** Creates (or finds) the service's pod and Service and the build's NetworkPolicy; returns its address. */
export async function startService(rt: KubeApi, req: StartServiceRequest, log?: ServiceLog): Promise<ServiceAddress> {
  // Inline, or the service file read from its artifact (a producer pod's output, or an upload).
  const config =
    req.spec.config ??
    (await serviceConfigFromFile(rt, req).catch((err: Error): never => {
      throw failed(err.message);
    }));
  const spec = withAddresses(req.name, { ...req.spec, config }, serviceScope(rt.namespace, req));
  const { anchor } = await rt.ensureAnchor(req.buildId);
  let objects: { pod: V1Pod; service: K8s.V1Service };
  try {
    objects = buildServiceObjects({ namespace: rt.namespace, ref: req, config: spec.config, image: spec.image, params: spec.params, worker: rt.worker, anchor, gracePeriodMs: spec.gracePeriodMs });
  } catch (err) {
    if (err instanceof PodSpecError) throw failed(err.message);
    throw err;
  }
  const net = rt.kc.makeApiClient(k8s().NetworkingV1Api);
  await createTolerant(() => net.createNamespacedNetworkPolicy({ namespace: rt.namespace, body: buildNetworkPolicy(rt.namespace, req.buildId, anchor) }));
  await createTolerant(() => rt.core.createNamespacedService({ namespace: rt.namespace, body: objects.service }));
  rt.calls.create += 3;
  await createTolerant(() => rt.core.createNamespacedPod({ namespace: rt.namespace, body: objects.pod }));
  const address: ServiceAddress = {
    name: req.spec.name,
    host: serviceDnsName(rt.namespace, req),
    ports: Object.fromEntries(spec.config.ports.map((p) => [p.name, p.number])),
    primaryPort: primaryPort(spec.config.ports),
  };
  const listed = Object.entries(address.ports).map(([n, p]) => `${n} ${p}`);
  await log?.note(`service ${req.name} started: pod ${objects.pod.metadata!.name} behind Service ${address.host}${listed.length ? `, ports: ${listed.join(', ')}` : ''}`);
  return address;
}

interface FollowHooks {
  signal?: AbortSignal;
  heartbeat?: () => void;
}

/**
 * Follows one pod (a GET, then a watch from its resourceVersion, resumed when the server ends
 * it) until `decide` returns a value; `decide(undefined)` means the pod is gone.
 */
export async function followPod<T>(rt: KubeApi, name: string, decide: (pod: V1Pod | undefined) => T | undefined, hooks: FollowHooks = {}): Promise<T | 'aborted'> {
  const beat = setInterval(() => hooks.heartbeat?.(), 1000);
  let abortWatch: AbortController | undefined;
  try {
    for (;;) {
      if (hooks.signal?.aborted) return 'aborted';
      let pod: V1Pod | undefined;
      try {
        rt.calls.get++;
        pod = await rt.core.readNamespacedPod({ name, namespace: rt.namespace });
      } catch (err) {
        if (apiCode(err) !== 404) throw err;
      }
      const first = decide(pod);
      if (first !== undefined) return first;
      const result = await new Promise<T | 'aborted' | 'resume'>((resolve, reject) => {
        const onAbort = () => resolve('aborted');
        hooks.signal?.addEventListener('abort', onAbort, { once: true });
        rt.calls.watch++;
        new (k8s().Watch)(rt.kc)
          .watch(
            `/api/v1/namespaces/${rt.namespace}/pods`,
            { fieldSelector: `metadata.name=${name}`, resourceVersion: pod?.metadata?.resourceVersion, allowWatchBookmarks: true, timeoutSeconds: 300 },
            (type: string, obj: V1Pod) => {
              rt.calls.watchEvents++;
              if (type === 'BOOKMARK' || type === 'ERROR') return;
              const v = decide(type === 'DELETED' ? undefined : obj);
              if (v !== undefined) resolve(v);
            },
            () => resolve('resume'),
          )
          .then((a) => (abortWatch = a), reject);
      });
      abortWatch?.abort();
      if (result !== 'resume') return result;
    }
  } finally {
    clearInterval(beat);
    abortWatch?.abort();
  }
}

/** Publishes one message of a service's log: JetStream in a worker, a collector in tests. */
export type ServiceLogPublish = (stream: LogStreamName, data: Uint8Array, msgId: string) => Promise<void>;

/** The service's own subject, as the local runtime publishes it (`causeway watch` shows it as [svc NAME]). */
export function natsServiceLog(nc: NatsConnection, ref: ServiceRef): ServiceLogPublish {
  const js = jetstream(nc);
  const subject = subjects.service(ref.buildId, ref.scopeStepId, ref.name);
  return (stream, data, msgId) => publishLog(js, subject, stream, data, msgId);
}

/**
 * A service's log: the container's output (stdout and stderr as the kubelet merges them), read
 * through the Log API from the start, one message per line whose id is its byte offset, and
 * Causeway's notes, numbered. Bytes below `offsets.stdout` (on NATS already) are read, for the
 * tail, but not sent again; what a retried activity re-sends past them JetStream drops as
 * duplicates. A log that cannot be read or published costs the live view only.
 */
export class ServiceLog {
  readonly offsets: ServiceLogOffsets;
  private readonly skip: number;
  private readonly runName: string;
  private readonly cutter = new LineCutter();
  private readonly lines: string[] = [];
  private stream?: { ended: Promise<void>; abort?: AbortController; closed: boolean };
  private unavailable?: string;

  constructor(
    private readonly rt: KubeApi,
    private readonly ref: ServiceRef,
    private readonly publish: ServiceLogPublish,
    offsets: ServiceLogOffsets = NO_OFFSETS,
    /** notes of stopService are numbered apart: it runs beside superviseService */
    private readonly writer = 'run',
  ) {
    this.offsets = { ...offsets };
    this.skip = offsets.stdout;
    this.runName = `${ref.runId}/${ref.scopeStepId}/${ref.runKey}/svc/${ref.name}`;
  }

  /** A line from Causeway itself in the service's log. */
  async note(text: string): Promise<void> {
    const n = this.offsets.notes++;
    await this.publish('causeway', Buffer.from(`${text}\n`), `${this.runName}/${this.writer}/note/${n}`).catch(() => undefined);
  }

  /** Starts following the container's log once `pod` shows it has run; once per ServiceLog. */
  follow(pod: V1Pod | undefined): void {
    if (this.stream || !containerStarted(pod, CONTAINERS.service)) return;
    let ended: () => void = () => undefined;
    const stream: NonNullable<ServiceLog['stream']> = { ended: new Promise<void>((resolve) => (ended = resolve)), closed: false };
    this.stream = stream;
    const sink = new Writable({
      write: (chunk: Buffer, _enc, cb) => void this.send(this.cutter.push(chunk)).then(() => cb()),
      final: (cb) =>
        void this.send(this.cutter.end()).then(() => {
          ended();
          cb();
        }),
    });
    sink.on('error', () => ended());
    this.rt.calls.log++;
    new (k8s().Log)(this.rt.kc)
      .log(this.rt.namespace, serviceObjectName(this.ref), CONTAINERS.service, sink, { follow: true })
      .then((abort) => {
        stream.abort = abort;
        if (stream.closed) abort.abort();
      })
      .catch((err: unknown) => {
        this.unavailable = apiMessage(err);
        ended();
        return this.note(`the service's log is not available: ${this.unavailable}`);
      });
  }

  get following(): boolean {
    return this.stream !== undefined;
  }

  /** Waits up to `ms` for the end of the log (the kubelet ends it when the container ends), then stops following. */
  async drain(ms: number): Promise<void> {
    if (!this.stream) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.stream.ended, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
    clearTimeout(timer);
    this.close();
  }

  close(): void {
    if (!this.stream) return;
    this.stream.closed = true;
    this.stream.abort?.abort();
  }

  /** The last lines read, for the message of a service that failed. */
  tail(): string {
    const partial = this.cutter.partial.toString('utf8').trimEnd();
    const lines = [...this.lines, ...(partial ? [partial] : [])].slice(-TAIL_LINES);
    if (lines.length > 0) return lines.join('\n');
    return this.unavailable ? `(its log could not be read: ${this.unavailable})` : '(no output)';
  }

  private async send(pieces: LogPiece[]): Promise<void> {
    for (const p of pieces) {
      const line = p.data.toString('utf8').trimEnd();
      if (line) this.lines.push(line);
    }
    this.lines.splice(0, Math.max(0, this.lines.length - TAIL_LINES));
    const fresh = pieces.filter((p) => p.offset >= this.skip);
    // Sent in order on one connection and acknowledged together: a chunk of many lines costs one round trip.
    await Promise.all(fresh.map((p) => this.publish('stdout', p.data, `${this.runName}/stdout/${p.offset}`).catch(() => undefined)));
    const last = fresh.at(-1);
    if (last) this.offsets.stdout = Math.max(this.offsets.stdout, last.offset + last.data.length);
  }
}

/**
 * Follows the service's pod until it is Ready, publishing its log meanwhile; a service that
 * never will be fails (ServiceFailed) with Kubernetes' reason and, when its container ran,
 * its last lines, as on the local runtime.
 */
export async function probeService(rt: KubeApi, ref: ServiceRef, log: ServiceLog, hooks: FollowHooks = {}): Promise<'ready' | 'aborted'> {
  const started = Date.now();
  const verdict = await followPod(
    rt,
    serviceObjectName(ref),
    (pod) => {
      log.follow(pod);
      return serviceReadiness(pod, ref.name);
    },
    hooks,
  );
  if (verdict === 'aborted') return verdict;
  if ('failed' in verdict) {
    let message = verdict.failed;
    if (log.following) {
      await log.drain(rt.opts.logDrainMs ?? CONTAINER_LOG_DRAIN_MS);
      message += `; its last lines:\n${log.tail()}`;
    }
    await log.note(message);
    throw failed(message);
  }
  await log.note(`service ${ref.name} is ready (its pod Ready after ${Date.now() - started} ms)`);
  return 'ready';
}

/** Follows the service's pod until it ends (stopService deletes it), publishing its log; returns its exit status. */
export async function superviseService(rt: KubeApi, ref: ServiceRef, log: ServiceLog, hooks: FollowHooks = {}): Promise<{ exitCode?: number } | 'aborted'> {
  const end = await followPod(
    rt,
    serviceObjectName(ref),
    (pod) => {
      log.follow(pod);
      return serviceEnd(pod);
    },
    hooks,
  );
  if (end !== 'aborted') await log.drain(rt.opts.logDrainMs ?? CONTAINER_LOG_DRAIN_MS);
  return end;
}

export async function stopService(rt: KubeApi, ref: ServiceRef, gracePeriodMs: number, log?: ServiceLog): Promise<void> {
  const name = serviceObjectName(ref);
  const grace = Math.max(0, Math.ceil(gracePeriodMs / 1000));
  if (await rt.deletePod(name, grace)) await log?.note(`stopping service ${ref.name}: pod ${name} deleted (SIGTERM, SIGKILL after ${grace}s)`);
  try {
    rt.calls.delete++;
    await rt.core.deleteNamespacedService({ name, namespace: rt.namespace });
  } catch (err) {
    if (apiCode(err) !== 404) throw err;
  }
}

/** The activities, bound to a runtime: heartbeats (with the log's offsets) and cancellation from Temporal's context. */
export function serviceActivities(deps: ActivityDeps, rt: KubeApi) {
  const logOf = (ref: ServiceRef, offsets?: ServiceLogOffsets, writer?: string) => new ServiceLog(rt, ref, natsServiceLog(deps.nc, ref), offsets, writer);
  /** A retried activity resumes the log where its previous attempt's last heartbeat says. */
  const resumed = (ref: ServiceRef, offsets: ServiceLogOffsets) => logOf(ref, (Context.current().info.heartbeatDetails as ServiceLogOffsets | undefined) ?? offsets);
  const ctxHooks = (log: ServiceLog): FollowHooks => {
    const ctx = Context.current();
    const abort = new AbortController();
    ctx.cancelled.catch(() => abort.abort());
    return { signal: abort.signal, heartbeat: () => ctx.heartbeat({ ...log.offsets }) };
  };
  /** A worker going away is not the build's cancellation: the pod keeps running and the retried activity re-attaches. */
  const handedOver = (): ApplicationFailure | undefined =>
    Context.current().cancellationDetails?.workerShutdown
      ? ApplicationFailure.create({ type: 'WorkerShutdown', message: 'worker shut down; the service keeps running and is handed over' })
      : undefined;
  return {
    startService: async (req: StartServiceRequest) => {
      const log = logOf(req);
      const address = await startService(rt, req, log);
      return { address, offsets: { ...log.offsets } };
    },
    probeService: async (req: ProbeServiceRequest) => {
      const log = resumed(req, req.offsets);
      try {
        if ((await probeService(rt, req, log, ctxHooks(log))) === 'aborted') {
          const handover = handedOver();
          if (handover) throw handover;
          await Context.current().cancelled;
        }
      } finally {
        log.close();
      }
      return { ...log.offsets };
    },
    superviseService: async (req: SuperviseServiceRequest) => {
      const log = resumed(req, req.offsets);
      try {
        const end = await superviseService(rt, req, log, ctxHooks(log));
        if (end !== 'aborted') return end;
        const handover = handedOver();
        if (handover) throw handover;
        return {};
      } finally {
        log.close();
      }
    },
    stopService: async (req: StopServiceRequest) => stopService(rt, req, req.gracePeriodMs, logOf(req, NO_OFFSETS, 'stop')),
  };
}
