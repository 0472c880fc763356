// Services on the kubernetes runtime: a pod plus a Kubernetes Service selecting it, both owned
// by the build's anchor (service-pod.ts builds them); startup_probe becomes the pod's
// startupProbe (exec), or without one a TCP startupProbe on the primary port; the address steps
// and sibling services get is the Service's DNS name; the service container's log goes to NATS
// on the service's subject (service-log.ts); a NetworkPolicy per build lets only the build's own
// pods reach its services.
import net from 'node:net';
import { Context } from '@temporalio/activity';
import { interpolateServices, type ServiceAddress } from '../../../common/services';
import type { ActivityDeps } from '../../deps';
import { secretTexts } from '../../creds';
import { handedOver, ServiceFailed, type StepDetached } from '../../errors';
import { mapServiceInputs } from '../../step/service-inputs';
import type { ResolvedServiceRequest } from '../types';
import type { ProbeServiceRequest, ServiceLogOffsets, ServiceRef, StopServiceRequest, SuperviseServiceRequest } from '../../types';
import type { KubeApi } from './api';
import { inputSources } from './artifact-ref';
import { k8s, type V1Pod } from './client';
import { apiCode } from './errors';
import { CONTAINER_LOG_DRAIN_MS } from './log-pieces';
import { PodSpecError } from './pod';
import { serviceEnd, serviceReadiness } from './pod-status';
import { followPod, type FollowHooks } from './pod-watcher';
import { NO_OFFSETS, ServiceLog, natsServiceLog } from './service-log';
import { buildNetworkPolicy, buildServiceObjects, primaryPort, serviceDnsName, serviceObjectName, serviceScope } from './service-pod';

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
    throw new ServiceFailed(`service ${name}: ${(err as Error).message}`);
  }
}

/** Creates (or finds) the service's pod and Service and the build's NetworkPolicy; returns its address. */
export async function startService(rt: KubeApi, req: ResolvedServiceRequest, log?: ServiceLog): Promise<ServiceAddress> {
  const spec = withAddresses(req.name, req.spec, serviceScope(rt.namespace, req));
  const { anchor, tokenSecret } = await rt.ensureAnchor(req.buildId);
  let objects: ReturnType<typeof buildServiceObjects>;
  try {
    const inputs = await inputSources(rt, req.buildId, `service ${req.name}`, mapServiceInputs(req, spec.config)).catch(
      (err: Error): never => {
        throw new ServiceFailed(err.message);
      },
    );
    objects = buildServiceObjects({
      namespace: rt.namespace,
      ref: req,
      config: spec.config,
      image: spec.image,
      params: spec.params,
      worker: rt.worker,
      anchor,
      gracePeriodMs: spec.gracePeriodMs,
      tokenSecret,
      agentImage: rt.opts.agentImage,
      inputs,
      secretValues: secretTexts(req.redact ?? []),
    });
  } catch (err) {
    if (err instanceof PodSpecError) throw new ServiceFailed(err.message);
    throw err;
  }
  const net = rt.kc.makeApiClient(k8s().NetworkingV1Api);
  await createTolerant(() =>
    net.createNamespacedNetworkPolicy({ namespace: rt.namespace, body: buildNetworkPolicy(rt.namespace, req.buildId, anchor) }),
  );
  await createTolerant(() => rt.core.createNamespacedService({ namespace: rt.namespace, body: objects.service }));
  rt.calls.create += 3;
  const { envSecret } = objects;
  if (envSecret) {
    rt.calls.create++;
    await createTolerant(() => rt.core.createNamespacedSecret({ namespace: rt.namespace, body: envSecret }));
  }
  await createTolerant(() => rt.core.createNamespacedPod({ namespace: rt.namespace, body: objects.pod }));
  const address: ServiceAddress = {
    name: req.spec.name,
    host: serviceDnsName(rt.namespace, req),
    ports: Object.fromEntries(spec.config.ports.map((p) => [p.name, p.number])),
    primaryPort: primaryPort(spec.config.ports),
  };
  const listed = Object.entries(address.ports).map(([n, p]) => `${n} ${p}`);
  await log?.note(
    `service ${req.name} started: pod ${objects.pod.metadata!.name} behind Service ${address.host}${listed.length ? `, ports: ${listed.join(', ')}` : ''}`,
  );
  return address;
}

/**
 * Follows the service's pod until it is Ready, publishing its log meanwhile; a service that
 * never will be fails (ServiceFailed) with Kubernetes' reason and, when its container ran,
 * its last lines, as on the local runtime.
 */
export async function probeService(rt: KubeApi, ref: ServiceRef, log: ServiceLog, hooks: FollowHooks = {}): Promise<'ready' | 'aborted'> {
  const started = Date.now();
  let last: V1Pod | undefined;
  const verdict = await followPod(
    rt,
    serviceObjectName(ref),
    (pod) => {
      last = pod;
      log.follow(pod);
      return serviceReadiness(pod, ref.name);
    },
    hooks,
  );
  if (verdict === 'aborted') return verdict;
  if ('failed' in verdict) {
    // Kubernetes' reason may quote the spec (an image reference): redacted as the log is.
    let message = log.redact(verdict.failed);
    if (log.following) {
      // A log ends with its container: one still running (its ports never opened) has said what it has.
      if (serviceEnd(last) !== undefined) await log.drain(rt.opts.logDrainMs ?? CONTAINER_LOG_DRAIN_MS);
      else log.close();
      message += `; its last lines:\n${log.tail()}`;
    }
    await log.note(message);
    throw new ServiceFailed(message);
  }
  const ip = last?.status?.podIP;
  const routed = ip
    ? (await endpointReady(rt, serviceObjectName(ref), ip, hooks)) && (await serviceAnswers(rt, serviceObjectName(ref), hooks))
    : true;
  if (hooks.signal?.aborted) return 'aborted';
  await log.note(
    `service ${ref.name} is ready (its pod Ready and its Service routing to it after ${Date.now() - started} ms` +
      `${routed ? '' : `; its Service did not route to it within ${ENDPOINT_WAIT_MS / 1000} s, so its name may refuse connections a moment longer`})`,
  );
  return 'ready';
}

/**
 * Whether a connection to the Service's address is not refused: kube-proxy rejects one to a
 * Service it routes to no endpoint, and it writes its rules a second or more after the
 * EndpointSlice lists the pod (seen on the real node). A worker that cannot reach the Service
 * (off the cluster, or a network policy dropping it) gets no refusal, and does not wait. This
 * alone is not enough: before kube-proxy has seen the Service at all there is no REJECT rule
 * either, so the connect is not refused; hence endpointReady first.
 */
async function serviceAnswers(rt: KubeApi, name: string, hooks: FollowHooks): Promise<boolean> {
  rt.calls.get++;
  const service = await rt.core.readNamespacedService({ name, namespace: rt.namespace }).catch(() => undefined);
  const host = service?.spec?.clusterIP;
  if (!host || host === 'None') return true;
  const deadline = Date.now() + ENDPOINT_WAIT_MS;
  for (const { port } of service?.spec?.ports ?? []) {
    while ((await connectOutcome(host, port)) === 'refused') {
      if (Date.now() > deadline || hooks.signal?.aborted) return false;
      hooks.heartbeat?.();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  return true;
}

function connectOutcome(host: string, port: number): Promise<'open' | 'refused' | 'unknown'> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, timeout: 1000 });
    const done = (outcome: 'open' | 'refused' | 'unknown') => {
      socket.destroy();
      resolve(outcome);
    };
    socket.once('connect', () => done('open'));
    socket.once('timeout', () => done('unknown'));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED' ? 'refused' : 'unknown'));
  });
}

/** How long a Ready service pod may wait to be listed behind its Service. */
const ENDPOINT_WAIT_MS = 15_000;

/**
 * Whether the Service lists the pod as a ready endpoint: a pod is Ready before the endpoint
 * controller and kube-proxy route its Service to it, and a step connecting in that window was
 * refused (seen on the real node: one of three services in an across).
 */
async function endpointReady(rt: KubeApi, service: string, ip: string, hooks: FollowHooks): Promise<boolean> {
  const discovery = rt.kc.makeApiClient(k8s().DiscoveryV1Api);
  const deadline = Date.now() + ENDPOINT_WAIT_MS;
  while (Date.now() < deadline && !hooks.signal?.aborted) {
    hooks.heartbeat?.();
    rt.calls.list++;
    const slices = await discovery
      .listNamespacedEndpointSlice({ namespace: rt.namespace, labelSelector: `kubernetes.io/service-name=${service}` })
      .catch(() => undefined);
    const listed = slices?.items.some((slice) => slice.endpoints.some((e) => e.conditions?.ready !== false && e.addresses.includes(ip)));
    if (listed) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

/** Follows the service's pod until it ends (stopService deletes it), publishing its log; returns its exit status. */
export async function superviseService(
  rt: KubeApi,
  ref: ServiceRef,
  log: ServiceLog,
  hooks: FollowHooks = {},
): Promise<{ exitCode?: number } | 'aborted'> {
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
  if (await rt.deletePod(name, grace))
    await log?.note(`stopping service ${ref.name}: pod ${name} deleted (SIGTERM, SIGKILL after ${grace}s)`);
  try {
    rt.calls.delete++;
    await rt.core.deleteNamespacedService({ name, namespace: rt.namespace });
  } catch (err) {
    if (apiCode(err) !== 404) throw err;
  }
}

/** The activities, bound to a runtime: heartbeats (with the log's offsets) and cancellation from Temporal's context. */
export function serviceActivities(deps: ActivityDeps, rt: KubeApi) {
  const logOf = (ref: ServiceRef, offsets?: ServiceLogOffsets, writer?: string) =>
    new ServiceLog(rt, ref, natsServiceLog(deps.nc, ref), offsets, writer);
  /** A retried activity resumes the log where its previous attempt's last heartbeat says. */
  const resumed = (ref: ServiceRef, offsets: ServiceLogOffsets) =>
    logOf(ref, (Context.current().info.heartbeatDetails as ServiceLogOffsets | undefined) ?? offsets);
  const ctxHooks = (log: ServiceLog): FollowHooks => {
    const ctx = Context.current();
    const abort = new AbortController();
    ctx.cancelled.catch(() => abort.abort());
    return { signal: abort.signal, heartbeat: () => ctx.heartbeat({ ...log.offsets }) };
  };
  /** A cancellation that is not the build's (errors.ts): the pod keeps running and the retried activity re-attaches. */
  const handover = (): StepDetached | undefined => handedOver(Context.current().cancellationDetails);
  return {
    startService: async (req: ResolvedServiceRequest) => {
      const log = logOf(req);
      const address = await startService(rt, req, log);
      return { address, offsets: { ...log.offsets } };
    },
    probeService: async (req: ProbeServiceRequest) => {
      const log = resumed(req, req.offsets);
      try {
        if ((await probeService(rt, req, log, ctxHooks(log))) === 'aborted') {
          const detached = handover();
          if (detached) throw detached;
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
        const detached = handover();
        if (detached) throw detached;
        return {};
      } finally {
        log.close();
      }
    },
    stopService: async (req: StopServiceRequest) => stopService(rt, req, req.gracePeriodMs, logOf(req, NO_OFFSETS, 'stop')),
  };
}
