// What a pod's status means for a task step and for a service (pod-status.ts): tables of
// statuses as the kubelet and the scheduler write them, and the verdict each gives.
import type { V1Pod, V1ContainerStatus } from '../../activities/runtime/kubernetes/client';
import { CONTAINERS } from '../../activities/runtime/kubernetes/pod';
import { containerStarted, evaluate, serviceEnd, serviceReadiness } from '../../activities/runtime/kubernetes/pod-status';

const GRACE = 60_000;
const NOW = 1_000_000;

const container = (name: string, state: V1ContainerStatus['state']): V1ContainerStatus => ({
  name,
  state,
  image: 'i',
  imageID: '',
  ready: false,
  restartCount: 0,
});
const pod = (status: V1Pod['status']): V1Pod => ({ metadata: { name: 'p' }, status });
const unschedulable = { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/1 nodes are available' };

describe('a task pod', () => {
  test.each<[string, V1Pod, number | undefined, ReturnType<typeof evaluate>]>([
    ['pending without statuses runs on', pod({ phase: 'Pending' }), undefined, { kind: 'running' }],
    [
      'a terminated task container gives its exit code',
      pod({ phase: 'Running', containerStatuses: [container(CONTAINERS.task, { terminated: { exitCode: 3 } })] }),
      undefined,
      { kind: 'exited', exitCode: 3 },
    ],
    [
      'the exit code wins over a failed phase',
      pod({ phase: 'Failed', containerStatuses: [container(CONTAINERS.task, { terminated: { exitCode: 0 } })] }),
      undefined,
      { kind: 'exited', exitCode: 0 },
    ],
    [
      'a failed input-fetcher errors the step',
      pod({
        phase: 'Pending',
        initContainerStatuses: [container(CONTAINERS.fetcher, { terminated: { exitCode: 2, reason: 'Error', message: 'no such input' } })],
      }),
      undefined,
      { kind: 'errored', reason: 'Error', message: 'input-fetcher failed (exit 2, Error): no such input' },
    ],
    [
      'an image that cannot be pulled errors the step',
      pod({
        phase: 'Pending',
        containerStatuses: [container(CONTAINERS.task, { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image' } })],
      }),
      undefined,
      { kind: 'errored', reason: 'ImagePullBackOff', message: 'container task: ImagePullBackOff: Back-off pulling image' },
    ],
    [
      "the kubelet's secret cache not synced yet runs on (it retries; the Secret was made just before the pod)",
      pod({
        phase: 'Pending',
        initContainerStatuses: [
          container(CONTAINERS.fetcher, {
            waiting: { reason: 'CreateContainerConfigError', message: 'failed to sync secret cache: timed out waiting for the condition' },
          }),
        ],
      }),
      undefined,
      { kind: 'running' },
    ],
    [
      'a missing Secret errors the step',
      pod({
        phase: 'Pending',
        containerStatuses: [
          container(CONTAINERS.task, { waiting: { reason: 'CreateContainerConfigError', message: 'secret "s" not found' } }),
        ],
      }),
      undefined,
      {
        kind: 'errored',
        reason: 'CreateContainerConfigError',
        message: 'container task: CreateContainerConfigError: secret "s" not found',
      },
    ],
    [
      'a container still creating runs on',
      pod({ phase: 'Pending', containerStatuses: [container(CONTAINERS.task, { waiting: { reason: 'ContainerCreating' } })] }),
      undefined,
      { kind: 'running' },
    ],
    [
      'an evicted pod errors the step',
      pod({ phase: 'Failed', reason: 'Evicted', message: 'low on memory' }),
      undefined,
      { kind: 'errored', reason: 'Evicted', message: "pod failed without the task's exit status: Evicted: low on memory" },
    ],
    [
      'unschedulable starts the grace period',
      pod({ phase: 'Pending', conditions: [unschedulable] }),
      undefined,
      { kind: 'running', unschedulableSince: NOW },
    ],
    [
      'unschedulable within the grace period runs on',
      pod({ phase: 'Pending', conditions: [unschedulable] }),
      NOW - GRACE + 1,
      { kind: 'running', unschedulableSince: NOW - GRACE + 1 },
    ],
    [
      'unschedulable past the grace period errors',
      pod({ phase: 'Pending', conditions: [unschedulable] }),
      NOW - GRACE,
      { kind: 'errored', reason: 'Unschedulable', message: 'unschedulable: 0/1 nodes are available' },
    ],
  ])('%s', (_what, p, since, verdict) => {
    expect(evaluate(p, NOW, since, GRACE)).toEqual(verdict);
  });

  test('has a log once its container runs or has run', () => {
    expect(containerStarted(undefined, CONTAINERS.task)).toBe(false);
    expect(
      containerStarted(
        pod({ containerStatuses: [container(CONTAINERS.task, { waiting: { reason: 'ContainerCreating' } })] }),
        CONTAINERS.task,
      ),
    ).toBe(false);
    expect(containerStarted(pod({ containerStatuses: [container(CONTAINERS.task, { running: {} })] }), CONTAINERS.task)).toBe(true);
    expect(
      containerStarted(pod({ containerStatuses: [container(CONTAINERS.task, { terminated: { exitCode: 0 } })] }), CONTAINERS.task),
    ).toBe(true);
  });
});

describe('a service pod', () => {
  const ready = { type: 'Ready', status: 'True' };
  test.each<[string, V1Pod | undefined, ReturnType<typeof serviceReadiness>]>([
    ['gone', undefined, { failed: 'service db: its pod is gone' }],
    ['starting', pod({ phase: 'Pending' }), undefined],
    [
      'Ready',
      pod({ phase: 'Running', conditions: [ready], containerStatuses: [container(CONTAINERS.service, { running: {} })] }),
      { ready: true },
    ],
    [
      'its port-probe killed by its startup probe: the ports that stayed closed',
      pod({
        phase: 'Running',
        containerStatuses: [
          container(CONTAINERS.service, { running: {} }),
          container(CONTAINERS.portProbe, {
            terminated: { exitCode: 1, message: 'ports not accepting connections at 198.18.0.9: admin 8081 (ECONNREFUSED)' },
          }),
        ],
      }),
      { failed: 'service db: not ready: ports not accepting connections at 198.18.0.9: admin 8081 (ECONNREFUSED)' },
    ],
    [
      'its input-fetcher failed',
      pod({
        phase: 'Failed',
        initContainerStatuses: [container(CONTAINERS.fetcher, { terminated: { exitCode: 1, message: 'input site: HTTP 404' } })],
      }),
      { failed: 'service db: input-fetcher failed (exit 1): input site: HTTP 404' },
    ],
    [
      'exited before it was ready',
      pod({ phase: 'Failed', containerStatuses: [container(CONTAINERS.service, { terminated: { exitCode: 1, reason: 'Error' } })] }),
      { failed: 'service db exited with status 1 (Error) before it was ready' },
    ],
    // The same fatal reasons as a task's: a hook error is as final for a service.
    [
      'a hook that failed',
      pod({ phase: 'Pending', containerStatuses: [container(CONTAINERS.service, { waiting: { reason: 'PreStartHookError' } })] }),
      { failed: 'service db: PreStartHookError' },
    ],
    [
      'unschedulable',
      pod({ phase: 'Pending', conditions: [unschedulable] }),
      { failed: 'service db: unschedulable: 0/1 nodes are available' },
    ],
  ])('%s', (_what, p, verdict) => {
    expect(serviceReadiness(p, 'db')).toEqual(verdict);
  });

  test.each<[string, V1Pod | undefined, ReturnType<typeof serviceEnd>]>([
    ['gone: ended without a status', undefined, {}],
    ['running', pod({ phase: 'Running', containerStatuses: [container(CONTAINERS.service, { running: {} })] }), undefined],
    [
      'exited',
      pod({ phase: 'Failed', containerStatuses: [container(CONTAINERS.service, { terminated: { exitCode: 137 } })] }),
      { exitCode: 137 },
    ],
    ['failed without a container status', pod({ phase: 'Failed' }), {}],
  ])('ends: %s', (_what, p, end) => {
    expect(serviceEnd(p)).toEqual(end);
  });
});
