import { randomUUID } from 'node:crypto';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import Long from 'long';
import { fullStatus } from './build-status';
import { resetPointFor, stepSchedules, withDecodedInputs } from './history';

const { ResetWorkflowExecutionRequest } = temporal.api.workflowservice.v1;

/** A retry that cannot be made, with what to do instead. */
export class RetryError extends Error {
  constructor(
    message: string,
    readonly fix: string,
  ) {
    super(message);
  }
}

/**
 * Resets a closed build to just before a step was first scheduled, so that step and
 * everything after it run again while the steps before keep their recorded results
 * (and the artifacts those results point at). Without `from`, the step is the first
 * task or load_var that failed, errored or was aborted.
 */
export async function retryBuild(
  client: Client,
  namespace: string,
  buildId: string,
  opts: { from?: string } = {},
): Promise<{ runId: string; stepId: string; previousRunId: string }> {
  const handle = client.workflow.getHandle(buildId);
  const info = await handle.describe();
  if (info.status.name === 'RUNNING')
    throw new RetryError(`build ${buildId} is still running`, `abort it first: causeway abort ${buildId}`);
  const history = await withDecodedInputs(await handle.fetchHistory(), client.options.loadedDataConverter.payloadCodecs);
  let stepId = opts.from;
  if (!stepId) {
    // The steps of big lists live in their parts (child workflows): ask them too.
    const summary = await fullStatus(client, buildId, info.runId);
    const first = summary.steps.find(
      (s) => (s.kind === 'task' || s.kind === 'load_var') && ['failed', 'errored', 'aborted'].includes(s.state),
    );
    if (!first)
      throw new RetryError(
        `build ${buildId} has no step that failed, errored or was aborted`,
        'choose a step with --from STEP_ID (see `causeway status`)',
      );
    stepId = first.id;
  }
  const point = resetPointFor(history, stepId);
  if (!point) {
    const ran = [...new Set(stepSchedules(history).map((s) => s.stepId))];
    throw new RetryError(`step ${stepId} never ran in build ${buildId}`, `steps that ran: ${ran.join(', ') || 'none'}`);
  }
  const { runId } = await client.workflowService.resetWorkflowExecution(
    ResetWorkflowExecutionRequest.create({
      namespace,
      workflowExecution: { workflowId: buildId, runId: info.runId },
      workflowTaskFinishEventId: Long.fromNumber(point.resetEventId),
      requestId: randomUUID(),
      reason: `causeway retry from ${stepId}`,
    }),
  );
  return { runId, stepId, previousRunId: info.runId };
}
