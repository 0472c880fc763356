// Services on the kubernetes runtime: a pod plus a Kubernetes Service selecting it, both owned
// by the build's anchor; startup_probe becomes the pod's startupProbe (exec), or without one a
// TCP readinessProbe on the primary port; the address steps get is the Service's DNS name; a
// NetworkPolicy per build lets only the build's own pods reach its services.
import { createHash } from 'node:crypto';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { ServiceAddress } from '../../../common/services';
import type { ServiceConfig } from '../../../schemas/compiled';
import type { ServiceLogOffsets, ServiceRef, StartServiceRequest } from '../../types';
import { k8s, type K8s, type V1Pod } from './client';
import { LABELS, MANAGED_BY, PodSpecError, dnsSlug, imageReference, labelValue, type Anchor } from './pod';
import type { KubernetesRuntime } from './task';

export const SERVICE_FAILED = 'ServiceFailed';
export const SERVICE_LABEL = 'causeway.dev/service';
const SERVICE_CONTAINER = 'service';
const NO_OFFSETS: ServiceLogOffsets = { stdout: 0, stderr: 0, notes: 0 };

function failed(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: SERVICE_FAILED, message, nonRetryable: true });
}

/** Pod and Service name: readable service name + a hash of build, run, scope step, attempt key and name. */
export function serviceObjectName(ref: ServiceRef): string {
  const h = createHash('sha256').update([ref.buildId, ref.runId, ref.scopeStepId, ref.runKey, ref.name].join('\0')).digest('hex').slice(0, 12);
  return `cw-svc-${dnsSlug(ref.name, 63 - 7 - 1 - h.length) || 'svc'}-${h}`;
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
          name: SERVICE_CONTAINER,
          image,
          command: [config.run.path],
          args: config.run.args,
          workingDir: config.run.dir,
          env: Object.keys(env)
            .sort()
            .map((k) => ({ name: k, value: env[k] })),
          ports: config.ports.map((p, i) => ({ name: portName(p.name, i), containerPort: p.number, protocol: 'TCP' })),
          // The probe the local runtime runs in the service's network, as Kubernetes runs it;
          // Kubernetes' periods are whole seconds.
          startupProbe: probe
            ? {
                exec: { command: [probe.run.path, ...probe.run.args] },
                failureThreshold: probe.failureThreshold,
                periodSeconds: Math.max(1, Math.ceil(probe.periodSeconds)),
                timeoutSeconds: Math.max(1, Math.ceil(probe.timeoutSeconds)),
              }
            : undefined,
          // Without a probe: ready when the primary port accepts connections.
          readinessProbe: probe ? undefined : { tcpSocket: { port: primary.number }, periodSeconds: 1, failureThreshold: 60 },
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

function code(err: unknown): number | undefined {
  const c = (err as { code?: unknown })?.code;
  return typeof c === 'number' ? c : undefined;
}

async function createTolerant(create: () => Promise<unknown>): Promise<void> {
  try {
    await create();
  } catch (err) {
    if (code(err) !== 409) throw err;
  }
}

/** Creates (or finds) the service's pod and Service and the build's NetworkPolicy; returns its address. */
export async function startService(rt: KubernetesRuntime, req: StartServiceRequest): Promise<ServiceAddress> {
  const config = req.spec.config;
  if (!config) throw failed(`service ${req.spec.name}: service config files (file: ${req.spec.file}) are not supported by the kubernetes runtime yet: inline the config`);
  const { anchor } = await rt.ensureAnchor(req.buildId);
  let objects: { pod: V1Pod; service: K8s.V1Service };
  try {
    objects = buildServiceObjects({ namespace: rt.namespace, ref: req, config, image: req.spec.image, params: req.spec.params, worker: rt.worker, anchor, gracePeriodMs: req.spec.gracePeriodMs });
  } catch (err) {
    if (err instanceof PodSpecError) throw failed(err.message);
    throw err;
  }
  const net = rt.kc.makeApiClient(k8s().NetworkingV1Api);
  await createTolerant(() => net.createNamespacedNetworkPolicy({ namespace: rt.namespace, body: buildNetworkPolicy(rt.namespace, req.buildId, anchor) }));
  await createTolerant(() => rt.core.createNamespacedService({ namespace: rt.namespace, body: objects.service }));
  rt.calls.create += 3;
  await createTolerant(() => rt.core.createNamespacedPod({ namespace: rt.namespace, body: objects.pod }));
  const name = objects.pod.metadata!.name!;
  return {
    name: req.spec.name,
    host: `${name}.${rt.namespace}.svc`,
    ports: Object.fromEntries(config.ports.map((p) => [p.name, p.number])),
    primaryPort: primaryPort(config.ports),
  };
}

interface FollowHooks {
  signal?: AbortSignal;
  heartbeat?: () => void;
}

/**
 * Follows one pod (a GET, then a watch from its resourceVersion, resumed when the server ends
 * it) until `decide` returns a value; `decide(undefined)` means the pod is gone.
 */
export async function followPod<T>(rt: KubernetesRuntime, name: string, decide: (pod: V1Pod | undefined) => T | undefined, hooks: FollowHooks = {}): Promise<T | 'aborted'> {
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
        if (code(err) !== 404) throw err;
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

const FATAL = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull', 'CreateContainerConfigError', 'CreateContainerError', 'RunContainerError']);

/** Ready, or why it never will be. */
export function serviceReadiness(pod: V1Pod | undefined, service: string): { ready: true } | { failed: string } | undefined {
  if (!pod) return { failed: `service ${service}: its pod is gone` };
  const status = pod.status ?? {};
  const c = status.containerStatuses?.find((s) => s.name === SERVICE_CONTAINER);
  const t = c?.state?.terminated;
  if (t) return { failed: `service ${service} exited with status ${t.exitCode}${t.reason ? ` (${t.reason})` : ''} before it was ready${t.message ? `: ${t.message}` : ''}` };
  const w = c?.state?.waiting;
  if (w?.reason && FATAL.has(w.reason)) return { failed: `service ${service}: ${w.reason}${w.message ? `: ${w.message}` : ''}` };
  if (status.phase === 'Failed') return { failed: `service ${service}: pod failed: ${status.reason ?? ''} ${status.message ?? ''}`.trim() };
  if (status.conditions?.some((x) => x.type === 'Ready' && x.status === 'True')) return { ready: true };
  const scheduled = status.conditions?.find((x) => x.type === 'PodScheduled');
  if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') return { failed: `service ${service}: unschedulable: ${scheduled.message ?? ''}` };
  return undefined;
}

/** The service's exit status once its container ended; {} when its pod is gone. */
export function serviceEnd(pod: V1Pod | undefined): { exitCode?: number } | undefined {
  if (!pod) return {};
  const t = pod.status?.containerStatuses?.find((s) => s.name === SERVICE_CONTAINER)?.state?.terminated;
  if (t) return { exitCode: t.exitCode };
  if (pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded') return {};
  return undefined;
}

export async function stopService(rt: KubernetesRuntime, ref: ServiceRef, gracePeriodMs: number): Promise<void> {
  const name = serviceObjectName(ref);
  await rt.deletePod(name, Math.max(0, Math.ceil(gracePeriodMs / 1000)));
  try {
    rt.calls.delete++;
    await rt.core.deleteNamespacedService({ name, namespace: rt.namespace });
  } catch (err) {
    if (code(err) !== 404) throw err;
  }
}

/** The activities, bound to a runtime: heartbeats and cancellation from Temporal's context. */
export function serviceActivities(rt: KubernetesRuntime) {
  const ctxHooks = (): FollowHooks => {
    const ctx = Context.current();
    const abort = new AbortController();
    ctx.cancelled.catch(() => abort.abort());
    return { signal: abort.signal, heartbeat: () => ctx.heartbeat() };
  };
  return {
    startService: async (req: StartServiceRequest) => ({ address: await startService(rt, req), offsets: NO_OFFSETS }),
    probeService: async (req: ServiceRef & { offsets: ServiceLogOffsets }) => {
      const verdict = await followPod(rt, serviceObjectName(req), (pod) => serviceReadiness(pod, req.name), ctxHooks());
      if (verdict === 'aborted') await Context.current().cancelled;
      else if ('failed' in verdict) throw failed(verdict.failed);
      return req.offsets;
    },
    superviseService: async (req: ServiceRef) => {
      const end = await followPod(rt, serviceObjectName(req), serviceEnd, ctxHooks());
      return end === 'aborted' ? {} : end;
    },
    stopService: async (req: ServiceRef & { gracePeriodMs: number }) => stopService(rt, req, req.gracePeriodMs),
  };
}
