import { Context } from '@temporalio/activity';
import { Kvm } from '@nats-io/kv';
import { temporal } from '@temporalio/proto';
import { WORKER_BUCKET, WorkerRecord, shownState } from '../schemas/workers';
import { workerTaskQueue } from './build';
import type { ActivityDeps } from './deps';
import type { PendingActivities } from './types';

const { PendingActivityState } = temporal.api.enums.v1;

/**
 * The workflow's activities not yet finished, by activity id, as Temporal sees them, and whether
 * the worker of `taskQueue` runs (the NATS worker registry, as `causeway workers` shows it): a
 * workflow cannot see an activity start (workflows/waiting.ts asks this to tell a step waiting
 * for a worker from one running or queued). A local activity, through the worker's own client.
 */
export async function pendingActivities(
  deps: Pick<ActivityDeps, 'nc'>,
  req: { workflowId: string; runId: string; taskQueue: string },
): Promise<PendingActivities> {
  const ctx = Context.current();
  const name = req.taskQueue.slice(workerTaskQueue('').length);
  const [described, record] = await Promise.all([
    ctx.client.workflowService.describeWorkflowExecution({
      namespace: ctx.info.workflowNamespace,
      execution: { workflowId: req.workflowId, runId: req.runId },
    }),
    new Kvm(deps.nc)
      .open(WORKER_BUCKET)
      .then((kv) => kv.get(name))
      .then((entry) => (entry?.operation === 'PUT' ? WorkerRecord.safeParse(entry.json()) : undefined))
      .catch(() => undefined),
  ]);
  const states: Record<string, 'scheduled' | 'started'> = {};
  const now = Date.now();
  for (const a of described.pendingActivities ?? []) {
    if (!a.activityId) continue;
    const scheduled = a.state === PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED;
    // A retry in its backoff is scheduled for later: not yet a step waiting for a worker (left out, looked at again).
    if (scheduled && Number(a.scheduledTime?.seconds ?? 0) * 1000 > now) continue;
    states[a.activityId] = scheduled ? 'scheduled' : 'started';
  }
  return { states, workerRunning: record?.success === true && shownState(record.data, now) === 'running' };
}
