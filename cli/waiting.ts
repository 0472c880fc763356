// Why a build makes no progress: nobody polls its task queue, or its worker stopped. Told by
// Temporal's DescribeTaskQueue (who polls) and the NATS worker registry (who landed, who stalled).
import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { shownState } from '../schemas/workers';
import { listWorkers, workerBucket } from '../workers/registry';
import type { Session } from './connect';

export interface Waiting {
  reason: string;
  fix: string;
}

/** Undefined when the build's queues have pollers and no step waits for a worker that stopped. */
export async function whyWaiting(session: Session, handle?: WorkflowHandle): Promise<Waiting | undefined> {
  const now = Date.now();
  const workers = await listWorkers(await workerBucket(session.nc)).catch(() => []);
  const stopped = workers.filter((w) => shownState(w, now) !== 'running').map((w) => `${w.name} (${shownState(w, now)})`);
  const notRunning = stopped.length > 0 ? `; workers not taking builds: ${stopped.join(', ')}` : '';
  const { pollers } = await session.client.workflowService.describeTaskQueue({
    namespace: session.namespace,
    taskQueue: { name: session.taskQueue },
    taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  if ((pollers ?? []).length === 0) {
    return {
      reason: `waiting for a worker: no worker polls task queue '${session.taskQueue}'${notRunning}`,
      fix: 'start one with `causeway worker` (or `causeway dev up`); `causeway workers` lists them',
    };
  }
  if (!handle) return undefined;
  const { raw } = await handle.describe();
  const scheduled = (raw.pendingActivities ?? []).filter(
    (a) => a.state === temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED,
  );
  // A landed worker leaves its pollers listed for minutes, and the build's next step is not
  // scheduled yet: what waits then is the workflow task that would schedule it.
  const taskWaits = raw.pendingWorkflowTask?.state === temporal.api.enums.v1.PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_SCHEDULED;
  if ((scheduled.length === 0 && !taskWaits) || stopped.length === 0) return undefined;
  const what = scheduled.length > 0 ? scheduled.map((a) => a.activityType?.name ?? '?').join(', ') : 'its next workflow task';
  return {
    reason: `waiting for its worker: ${what} scheduled but not started${notRunning}`,
    fix: 'start that worker again under its name (it re-attaches), or abort and rerun the build',
  };
}
