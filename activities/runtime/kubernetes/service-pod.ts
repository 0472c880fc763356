// A service's objects on the kubernetes runtime, built by pure functions (as pod.ts builds a
// task's pod): its pod and the Kubernetes Service selecting it, both owned by the build's
// anchor, and the build's NetworkPolicy; their names and the DNS names steps reach them at.
import { createHash } from 'node:crypto';
import { siblingScope, type ServiceAddress } from '../../../common/services';
import type { ServiceConfig } from '../../../schemas/compiled';
import { PROBE_DEFAULTS } from '../../../schemas/services';
import type { ServiceRef, StartServiceRequest } from '../../types';
import type { K8s, V1Pod } from './client';
import { buildEnvSecret, envSecretName, envVars } from './env-secret';
import {
  CONTAINERS,
  DEFAULT_AGENT_IMAGE,
  LABELS,
  MANAGED_BY,
  PodSpecError,
  WORKDIR,
  dnsSlug,
  imageReference,
  inputFetcher,
  labelValue,
  within,
  type Anchor,
  type InputSource,
} from './pod';

export const SERVICE_LABEL = 'causeway.dev/service';
/** without a startup_probe, how long the ports may take to open: as long as the local runtime waits */
const PORTS_TIMEOUT_SECONDS = 2 * PROBE_DEFAULTS.failureThreshold * PROBE_DEFAULTS.periodSeconds;
/** The port-probe container (a service with several ports and no startup_probe) answers GET /ready here. */
export const PORT_PROBE_PORT = 7790;

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
  /** the build's Secret holding the artifact token (the input-fetcher's) */
  tokenSecret: string;
  agentImage?: string;
  /** resolved inputs; absent optional inputs are simply not listed */
  inputs?: InputSource[];
  /** values the pod spec must not show: env vars holding them come from the service's Secret (env-secret.ts) */
  secretValues?: readonly string[];
}

/** Pure: the service's pod and its Kubernetes Service, and the Secret of its secret env vars when it has some. */
export function buildServiceObjects(input: ServiceObjectsInput): { pod: V1Pod; service: K8s.V1Service; envSecret?: K8s.V1Secret } {
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
  const secret = input.secretValues?.length ? { name: envSecretName(name), values: input.secretValues } : undefined;
  const agentImage = input.agentImage ?? DEFAULT_AGENT_IMAGE;
  // The probe the local runtime runs in the service's network, as Kubernetes runs it
  // (Kubernetes' periods are whole seconds). Without one: started, and Ready, when every port
  // accepts connections, as on the local runtime. One port: a TCP startup probe on it. Several:
  // Kubernetes gives a container one probe of each kind, so a port-probe container (the agent)
  // checks them all behind one HTTP startup probe. A port that never opens gets the prober
  // killed, so the service fails with the ports that stayed closed instead of leaving the step
  // waiting.
  const startupProbe: K8s.V1Probe | undefined = probe
    ? {
        exec: { command: [probe.run.path, ...probe.run.args] },
        failureThreshold: probe.failureThreshold,
        periodSeconds: Math.max(1, Math.ceil(probe.periodSeconds)),
        timeoutSeconds: Math.max(1, Math.ceil(probe.timeoutSeconds)),
      }
    : config.ports.length === 1
      ? { tcpSocket: { port: primary.number }, periodSeconds: 1, failureThreshold: PORTS_TIMEOUT_SECONDS }
      : undefined;
  const portProbe: K8s.V1Container[] =
    probe || config.ports.length === 1
      ? []
      : [
          {
            name: CONTAINERS.portProbe,
            image: agentImage,
            command: ['causeway-agent', 'probe'],
            env: [
              { name: 'CAUSEWAY_PROBE_HOST', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
              { name: 'CAUSEWAY_PROBE_PORTS', value: JSON.stringify(config.ports.map((p) => ({ name: p.name, number: p.number }))) },
              { name: 'CAUSEWAY_PORT', value: String(PORT_PROBE_PORT) },
            ],
            startupProbe: {
              httpGet: { path: '/ready', port: PORT_PROBE_PORT },
              periodSeconds: 1,
              timeoutSeconds: 2,
              failureThreshold: PORTS_TIMEOUT_SECONDS,
            },
            resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '128Mi' } },
          },
        ];
  // Inputs land in the pod's work dir, where the service then runs (run.dir inside it), as on
  // the local runtime; a service without inputs keeps its image's working dir.
  const inputs = input.inputs ?? [];
  const work = inputs.length > 0 ? { name: 'work', mountPath: WORKDIR } : undefined;
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
          workingDir: work ? within(WORKDIR, config.run.dir ?? '.') : config.run.dir,
          env: envVars(env, secret),
          ports: config.ports.map((p, i) => ({ name: portName(p.name, i), containerPort: p.number, protocol: 'TCP' })),
          startupProbe,
          volumeMounts: work ? [work] : undefined,
        },
        ...portProbe,
      ],
      initContainers: work ? [inputFetcher({ agentImage, inputs, mkdirs: [], tokenSecret: input.tokenSecret })] : undefined,
      volumes: work ? [{ name: 'work', emptyDir: {} }] : undefined,
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
  const envSecret =
    secret &&
    buildEnvSecret({ namespace: input.namespace, vars: env, secret, owner, labels: { ...labels, [LABELS.component]: 'service-env' } });
  return { pod, service, ...(envSecret ? { envSecret } : {}) };
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
