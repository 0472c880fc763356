import { Context } from '@temporalio/activity';
import { temporal } from '@temporalio/proto';

const { PendingActivityState } = temporal.api.enums.v1;

/**
 * The workflow's activities not yet finished, by activity id, as Temporal sees them: a workflow
 * cannot see an activity start (workflows/waiting.ts asks this to tell a step waiting for a
 * worker from one running). A local activity, through the worker's own client.
 */
export async function pendingActivities(req: { workflowId: string; runId: string }): Promise<Record<string, 'scheduled' | 'started'>> {
  const ctx = Context.current();
  const described = await ctx.client.workflowService.describeWorkflowExecution({
    namespace: ctx.info.workflowNamespace,
    execution: { workflowId: req.workflowId, runId: req.runId },
  });
  const states: Record<string, 'scheduled' | 'started'> = {};
  const now = Date.now();
  for (const a of described.pendingActivities ?? []) {
    if (!a.activityId) continue;
    const scheduled = a.state === PendingActivityState.PENDING_ACTIVITY_STATE_SCHEDULED;
    // A retry in its backoff is scheduled for later: not yet a step waiting for a worker (left out, looked at again).
    if (scheduled && Number(a.scheduledTime?.seconds ?? 0) * 1000 > now) continue;
    states[a.activityId] = scheduled ? 'scheduled' : 'started';
  }
  return states;
}
