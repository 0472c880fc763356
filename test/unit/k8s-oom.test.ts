// The kubelet's OOMKilled reason becomes a line in the step's log: exit 137 alone does not say why.
import type { V1Pod } from '../../activities/runtime/kubernetes/client';
import { CONTAINERS } from '../../activities/runtime/kubernetes/pod';
import { oomKilled } from '../../activities/runtime/kubernetes/pod-status';

const pod = (reason: string, limit?: string): V1Pod => ({
  spec: { containers: [{ name: CONTAINERS.task, resources: limit ? { limits: { memory: limit } } : undefined }] },
  status: {
    containerStatuses: [
      { name: CONTAINERS.task, image: 'i', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 137, reason } } },
    ],
  },
});

test('an OOM-killed task is named with its limit; other endings say nothing', () => {
  expect(oomKilled(pod('OOMKilled', '67108864'))).toBe(
    'container task was OOMKilled: it used more memory than its limit (67108864 bytes, container_limits.memory)',
  );
  expect(oomKilled(pod('OOMKilled'))).toBe('container task was OOMKilled: it used more memory than its limit');
  expect(oomKilled(pod('Error', '67108864'))).toBeUndefined();
});
