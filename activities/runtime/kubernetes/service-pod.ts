// A service's objects on the kubernetes runtime, built by pure functions (as pod.ts builds a
// task's pod): its pod and the Kubernetes Service selecting it, both owned by the build's
// anchor, and the build's NetworkPolicy; their names and the DNS names steps reach them at.
import { createHash } from 'node:crypto';
import { siblingScope, type ServiceAddress } from '../../../common/services';
import type { ServiceConfig } from '../../../schemas/compiled';
import { PROBE_DEFAULTS } from '../../../schemas/services';
import type { ServiceRef, StartServiceRequest } from '../../types';
import type { K8s, V1Pod } from './client';
import { CONTAINERS, LABELS, MANAGED_BY, PodSpecError, dnsSlug, imageReference, labelValue, type Anchor } from './pod';

export const SERVICE_LABEL = 'causeway.dev/service';
/** without a startup_probe, how long the primary port may take to open: as long as the local runtime waits */
const PORTS_TIMEOUT_SECONDS = 2 * PROBE_DEFAULTS.failureThreshold * PROBE_DEFAULTS.periodSeconds;

/** Pod and Service name: readable service name + a hash of build, run, scope step, attempt key and name. */
export function serviceObjectName(ref: ServiceRef): string {
  const h = createHash('sha256')
    .update([ref.buildId, ref.runId, ref.scopeStepId, ref.runKey, ref.name].join('\0'))
    .digest('hex')
    .slice(0, 12);
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
      annotations: {
        'causeway.dev/service-name': ref.name,
        'causeway.dev/scope-step-id': ref.scopeStepId,
        'causeway.dev/run-key': ref.runKey,
      },
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
