// What a pod's status means for a step, as pure functions (Tekton's pkg/pod/status.go): the
// task's verdict, a service's readiness and end. One list of fatal reasons for tasks and
// services alike; table tests in test/unit/k8s-pod-status.test.ts.
import type { V1ContainerStatus, V1Pod } from './client';
import { CONTAINERS } from './pod';

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

/**
 * A CreateContainerConfigError the kubelet retries by itself: its watch of a Secret or ConfigMap
 * created a moment before the pod (a step's own credentials, its agents' token) had not synced
 * yet. Seen on the real node under load; a missing Secret or key says so instead, and stays fatal.
 */
const TRANSIENT_CONFIG_ERROR = /failed to sync (secret|configmap) cache/i;

function fatalWaiting(reason: string, message: string | undefined): boolean {
  if (!FATAL_WAITING.has(reason)) return false;
  return !(reason === 'CreateContainerConfigError' && TRANSIENT_CONFIG_ERROR.test(message ?? ''));
}

export type Verdict =
  | { kind: 'exited'; exitCode: number }
  | { kind: 'errored'; reason: string; message: string }
  | { kind: 'running'; unschedulableSince?: number };

/** The container (the task's, a service's) is running or has run: there is a log to read. */
export function containerStarted(pod: V1Pod | undefined, container: string): boolean {
  const state = findStatus(pod?.status?.containerStatuses, container)?.state;
  return !!(state?.running || state?.terminated);
}

function findStatus(statuses: V1ContainerStatus[] | undefined, name: string): V1ContainerStatus | undefined {
  return statuses?.find((s) => s.name === name);
}

/** The kubelet's word that the task went over its memory limit (exit 137 alone does not say why). */
export function oomKilled(pod: V1Pod): string | undefined {
  const task = findStatus(pod.status?.containerStatuses, CONTAINERS.task);
  if (task?.state?.terminated?.reason !== 'OOMKilled') return undefined;
  const limit = pod.spec?.containers.find((c) => c.name === CONTAINERS.task)?.resources?.limits?.memory;
  return `container task was OOMKilled: it used more memory than its limit${limit ? ` (${limit} bytes, container_limits.memory)` : ''}`;
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
    return {
      kind: 'errored',
      reason: ft.reason ?? 'InputFetchFailed',
      message: `${CONTAINERS.fetcher} failed (exit ${ft.exitCode}${ft.reason ? `, ${ft.reason}` : ''})${ft.message ? `: ${ft.message}` : ''}`,
    };
  }
  for (const s of [...(status.initContainerStatuses ?? []), ...(status.containerStatuses ?? [])]) {
    const waiting = s.state?.waiting;
    if (waiting?.reason && fatalWaiting(waiting.reason, waiting.message)) {
      return {
        kind: 'errored',
        reason: waiting.reason,
        message: `container ${s.name}: ${waiting.reason}${waiting.message ? `: ${waiting.message}` : ''}`,
      };
    }
  }
  if (status.phase === 'Failed' || status.phase === 'Succeeded') {
    const reason = status.reason ?? status.phase;
    return {
      kind: 'errored',
      reason,
      message: `pod ${status.phase.toLowerCase()} without the task's exit status: ${reason}${status.message ? `: ${status.message}` : ''}`,
    };
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

/** Ready, or why it never will be. */
export function serviceReadiness(pod: V1Pod | undefined, service: string): { ready: true } | { failed: string } | undefined {
  if (!pod) return { failed: `service ${service}: its pod is gone` };
  const status = pod.status ?? {};
  const c = findStatus(status.containerStatuses, CONTAINERS.service);
  const t = c?.state?.terminated;
  if (t)
    return {
      failed: `service ${service} exited with status ${t.exitCode}${t.reason ? ` (${t.reason})` : ''} before it was ready${t.message ? `: ${t.message}` : ''}`,
    };
  const w = c?.state?.waiting;
  if (w?.reason && fatalWaiting(w.reason, w.message))
    return { failed: `service ${service}: ${w.reason}${w.message ? `: ${w.message}` : ''}` };
  const fetched = findStatus(status.initContainerStatuses, CONTAINERS.fetcher)?.state?.terminated;
  if (fetched && fetched.exitCode !== 0)
    return {
      failed: `service ${service}: ${CONTAINERS.fetcher} failed (exit ${fetched.exitCode})${fetched.message ? `: ${fetched.message}` : ''}`,
    };
  // The port-probe is killed when its startup probe gives up: some port never opened.
  const prober = findStatus(status.containerStatuses, CONTAINERS.portProbe)?.state?.terminated;
  if (prober)
    return {
      failed: `service ${service}: not ready: ${prober.message?.trim() || `its ${CONTAINERS.portProbe} container ended (exit ${prober.exitCode})`}`,
    };
  if (status.phase === 'Failed') return { failed: `service ${service}: pod failed: ${status.reason ?? ''} ${status.message ?? ''}`.trim() };
  if (status.conditions?.some((x) => x.type === 'Ready' && x.status === 'True')) return { ready: true };
  const scheduled = status.conditions?.find((x) => x.type === 'PodScheduled');
  if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable')
    return { failed: `service ${service}: unschedulable: ${scheduled.message ?? ''}` };
  return undefined;
}

/** The service's exit status once its container ended; {} when its pod is gone. */
export function serviceEnd(pod: V1Pod | undefined): { exitCode?: number } | undefined {
  if (!pod) return {};
  const t = findStatus(pod.status?.containerStatuses, CONTAINERS.service)?.state?.terminated;
  if (t) return { exitCode: t.exitCode };
  if (pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded') return {};
  return undefined;
}
