// Setting a pipeline, shared by `causeway set-pipeline` and the set_pipeline step, so both
// diff the same way and create or update the pipeline's workflow the same way.
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { createTwoFilesPatch } from 'diff';
import { formatPipelineRef, pipelineKey } from '../schemas/instance-vars';
import type { PipelineConfig } from '../schemas/pipeline';
import {
  emptyPipelineInput,
  PIPELINE_QUERIES,
  PIPELINE_UPDATES,
  PIPELINE_WORKFLOW,
  pipelineWorkflowId,
  SET_BY_NEWER_BUILD,
  type PipelineView,
  type SetBy,
} from '../schemas/pipeline-api';

/** The key of a compiled pipeline: its workflow is `pipeline-KEY`. */
export const configKey = (config: PipelineConfig) => pipelineKey({ name: config.name, instanceVars: config.instanceVars });

/** A pipeline's last state (by its key), also of a destroyed one (its workflow closed); undefined when it never existed. */
export async function lastPipelineView(client: Client, pipeline: string): Promise<{ view: PipelineView; running: boolean } | undefined> {
  const handle = client.workflow.getHandle(pipelineWorkflowId(pipeline));
  try {
    const { status } = await handle.describe();
    return { view: await handle.query<PipelineView>(PIPELINE_QUERIES.view), running: status.name === 'RUNNING' };
  } catch (err) {
    if ((err as Error).name === 'WorkflowNotFoundError') return undefined;
    throw err;
  }
}

/** The unified diff's lines from the running file's text to the new one; all empty when nothing changed. */
export function pipelineDiff(runningText: string, nextText: string, file: string): string[] {
  return createTwoFilesPatch('running', file, runningText, nextText, undefined, undefined, { context: 3 }).split('\n').slice(4);
}

/** Whether a diff changes anything. */
export const changes = (diff: string[]) => diff.some((l) => l !== '');

/** What set-pipeline says of the vars it left for the credential managers (as fly does), so a typo shows now; undefined when none. */
export function credentialRefsNote(config: PipelineConfig): string | undefined {
  const refs = [...new Set(credentialRefs(config).map((d) => d.ref))];
  return refs.length > 0
    ? `credential refs the workers resolve when a check or build runs: ${refs.map((r) => `((${r}))`).join(', ')}`
    : undefined;
}

/** The credential refs a pipeline leaves to the workers, each where the file has it (a ref used twice is listed twice). */
export function credentialRefs(config: PipelineConfig): { ref: string; at: string }[] {
  return [...config.resources.flatMap((r) => r.ref.deferredVars ?? []), ...config.jobs.flatMap((j) => j.plan.deferredVars ?? [])];
}

/**
 * Updates the running pipeline, or starts it. A pipeline set again after destroy-pipeline
 * numbers its builds on from the last one: its old builds keep their workflow ids
 * (build-P:J:N), which a new build may not reuse. `by` is the job build of a set_pipeline
 * step (absent for a person): the pipeline refuses it when a newer build set it last.
 * `initiallyPaused`: a pipeline this call creates starts paused, as Concourse's `fly
 * set-pipeline` makes it (a set_pipeline step's starts unpaused); an update keeps its state.
 */
export async function applyPipeline(
  client: Client,
  taskQueue: string,
  config: PipelineConfig,
  last: { view: PipelineView; running: boolean } | undefined,
  { by, initiallyPaused }: { by?: SetBy; initiallyPaused: boolean },
): Promise<'created' | 'updated' | { refused: string }> {
  const handle = client.workflow.getHandle(pipelineWorkflowId(configKey(config)));
  const update = async () => {
    try {
      await handle.executeUpdate(PIPELINE_UPDATES.setConfig, { args: [config, by] });
      return 'updated' as const;
    } catch (err) {
      const refused = setByNewerMessage(err);
      if (refused) return { refused };
      throw err;
    }
  };
  if (last?.running) return update();
  const input = emptyPipelineInput(config);
  if (last) input.state.counters = last.view.state.counters;
  input.setBy = by;
  input.state.paused = initiallyPaused;
  try {
    await client.workflow.start(PIPELINE_WORKFLOW, {
      taskQueue,
      workflowId: pipelineWorkflowId(configKey(config)),
      args: [input],
      staticSummary: `pipeline ${formatPipelineRef(config)}`,
    });
    return 'created';
  } catch (err) {
    // Another setter created it since we looked: update it instead.
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    return update();
  }
}

/** Makes `by` the build that set the running pipeline last, its config unchanged (Concourse's SetParentIDs). */
export async function setPipelineParent(client: Client, pipeline: string, by: SetBy): Promise<'updated' | { refused: string }> {
  try {
    await client.workflow.getHandle(pipelineWorkflowId(pipeline)).executeUpdate(PIPELINE_UPDATES.setParent, { args: [by] });
    return 'updated';
  } catch (err) {
    const refused = setByNewerMessage(err);
    if (refused) return { refused };
    throw err;
  }
}

/** The pipeline's reason when an update failed because a newer build set it (that failure type, anywhere in the cause chain). */
function setByNewerMessage(err: unknown): string | undefined {
  for (let e = err as { type?: unknown; message?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e)
    if (e.type === SET_BY_NEWER_BUILD) return e.message;
  return undefined;
}
