// Setting a pipeline, shared by `causeway set-pipeline` and the set_pipeline step, so both
// diff the same way and create or update the pipeline's workflow the same way; and what an
// ended pipeline left (its build numbers, whether it was archived).
import {
  WorkflowExecutionAlreadyStartedError,
  type Client,
  type WorkflowExecutionDescription,
  type WorkflowExecutionStatusName,
} from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createTwoFilesPatch } from 'diff';
import { formatPipelineRef, pipelineKey, type InstanceVars } from '../schemas/instance-vars';
import type { PipelineConfig } from '../schemas/pipeline';
import {
  emptyPipelineInput,
  jobBuildId,
  PIPELINE_QUERIES,
  PIPELINE_UPDATES,
  PIPELINE_WORKFLOW,
  PipelineEndSchema,
  pipelineKeyOfWorkflowId,
  pipelineNameOf,
  pipelineWorkflowId,
  SET_BY_NEWER_BUILD,
  type PipelineInput,
  type PipelineView,
  type SetBy,
} from '../schemas/pipeline-api';

/** The key of a compiled pipeline: its workflow is `pipeline-KEY`. */
export const configKey = (config: PipelineConfig) => pipelineKey({ name: config.name, instanceVars: config.instanceVars });

/** A running pipeline's view, or what set-pipeline needs of a destroyed one (its workflow closed). */
export type LastPipeline = { running: true; view: PipelineView } | { running: false; counters: Record<string, number> };

/**
 * Whether a pipeline (by its key) runs, and on which task queue, or what set-pipeline needs of
 * it once ended; undefined when it never existed. No query: no worker needed.
 */
export async function describePipeline(
  client: Client,
  pipeline: string,
): Promise<{ running: true; taskQueue: string } | { running: false; counters: Record<string, number> } | undefined> {
  let described: WorkflowExecutionDescription;
  try {
    described = await client.workflow.getHandle(pipelineWorkflowId(pipeline)).describe();
  } catch (err) {
    if ((err as Error).name === 'WorkflowNotFoundError') return undefined;
    throw err;
  }
  if (described.status.name !== 'RUNNING') return { running: false, counters: await closedCounters(client, pipeline) };
  return { running: true, taskQueue: described.taskQueue };
}

/** A pipeline's last state (by its key), also of a destroyed one; undefined when it never existed. */
export async function lastPipelineView(client: Client, pipeline: string): Promise<LastPipeline | undefined> {
  const described = await describePipeline(client, pipeline);
  if (!described?.running) return described;
  const handle = client.workflow.getHandle(pipelineWorkflowId(pipeline));
  const silent = (reason: string, cause?: unknown) =>
    new Error(
      `pipeline ${pipeline} did not answer (${reason}): start a worker on task queue '${described.taskQueue}' (causeway dev up, or causeway worker)`,
      { cause },
    );
  // A query waits for a worker, 30 s before it fails when none polls. A queue without a poller
  // for a few seconds says so sooner; a worker that is starting polls within them.
  const stop = new AbortController();
  const query = client.withAbortSignal(stop.signal, () => handle.query<PipelineView>(PIPELINE_QUERIES.view));
  const polled = () =>
    client.workflowService
      .describeTaskQueue({
        namespace: client.options.namespace,
        taskQueue: { name: described.taskQueue },
        taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
      })
      .then(
        ({ pollers }) => (pollers ?? []).length > 0,
        () => true,
      );
  const unpolled = (async () => {
    for (const until = Date.now() + NO_POLLER_GRACE_MS; Date.now() < until && !stop.signal.aborted;) {
      if (await polled()) return false;
      await sleep(500, undefined, { signal: stop.signal }).catch(() => undefined);
    }
    return !stop.signal.aborted;
  })();
  try {
    const view = await Promise.race([
      query,
      unpolled.then((none) => (none ? Promise.reject(silent('no worker polls its task queue')) : query)),
    ]);
    return { running: true, view };
  } catch (err) {
    throw err instanceof Error && err.message.startsWith(`pipeline ${pipeline} did not answer`) ? err : silent((err as Error).message, err);
  } finally {
    // Ends the query's retries and the poller checks, whichever is left.
    stop.abort();
  }
}

/** How long a running pipeline's task queue may have no poller before a query of it is given up. */
const NO_POLLER_GRACE_MS = 5_000;

/**
 * The build numbers a destroyed pipeline gave, to number on from: its workflow's result (no
 * worker needed, unlike a query); for one destroyed before it returned them, or ended
 * otherwise (terminated), the highest number among its builds' workflow ids in visibility.
 */
async function closedCounters(client: Client, pipeline: string): Promise<Record<string, number>> {
  try {
    const end = PipelineEndSchema.safeParse(await client.workflow.getHandle(pipelineWorkflowId(pipeline)).result());
    if (end.success) return end.data.counters;
  } catch {
    // Terminated, cancelled or failed: no result; visibility still lists its builds.
  }
  const prefix = jobBuildId(pipeline, '', 0).slice(0, -':0'.length); // build-PIPELINE:
  const counters: Record<string, number> = {};
  for await (const wf of client.workflow.list({ query: `WorkflowId STARTS_WITH ${JSON.stringify(prefix)}` })) {
    const rest = wf.workflowId.slice(prefix.length);
    const at = rest.lastIndexOf(':');
    const number = Number(rest.slice(at + 1));
    // A number too high only skips numbers; too low would reuse a build's id.
    if (at > 0 && Number.isInteger(number)) counters[rest.slice(0, at)] = Math.max(counters[rest.slice(0, at)] ?? 0, number);
  }
  return counters;
}

/** A pipeline workflow's run as visibility lists it. */
export interface PipelineRun {
  workflowId: string;
  runId: string;
  status: WorkflowExecutionStatusName;
  closeTime?: Date;
}

/**
 * Of each pipeline's runs, the one whose result says how it ended: its last, when none runs
 * (set again since) and that one completed (a terminated pipeline returned nothing). A run
 * continued as new closed before the run it continued as, so it is never the last.
 */
export function endedRuns(runs: PipelineRun[]): PipelineRun[] {
  const byId = new Map<string, PipelineRun[]>();
  for (const run of runs) byId.set(run.workflowId, [...(byId.get(run.workflowId) ?? []), run]);
  return [...byId.values()].flatMap((of) => {
    if (of.some((r) => r.status === 'RUNNING')) return [];
    const last = of.reduce((a, b) => ((b.closeTime?.getTime() ?? 0) > (a.closeTime?.getTime() ?? 0) ? b : a));
    return last.status === 'COMPLETED' ? [last] : [];
  });
}

/** An archived pipeline, not set again since: `ref` is how it prints (NAME/k:v,... for an instance). */
export interface ArchivedPipeline {
  key: string;
  name: string;
  instanceVars?: InstanceVars;
  ref: string;
}

/**
 * The pipelines whose last run ended archived (archive-pipeline, or abandoned by the pipeline
 * that set it), from visibility and the runs' results: no worker needed. One archived before
 * its result named it is listed by its key.
 */
export async function archivedPipelines(client: Client): Promise<ArchivedPipeline[]> {
  const runs: PipelineRun[] = [];
  const query = `WorkflowType = '${PIPELINE_WORKFLOW}' AND ExecutionStatus != 'ContinuedAsNew'`;
  for await (const wf of client.workflow.list({ query }))
    runs.push({ workflowId: wf.workflowId, runId: wf.runId, status: wf.status.name, closeTime: wf.closeTime });
  const ended = endedRuns(runs);
  // The ended runs' results asked for at once, not one after another (grpc-js queues what the connection cannot take).
  const ends = await Promise.all(
    ended.map((run) =>
      client.workflow
        .getHandle(run.workflowId, run.runId)
        .result()
        .catch(() => undefined),
    ),
  );
  const archived: ArchivedPipeline[] = [];
  ended.forEach((run, i) => {
    const end = PipelineEndSchema.safeParse(ends[i]);
    if (!end.success || !end.data.archived) return;
    const key = pipelineKeyOfWorkflowId(run.workflowId);
    const { name, instanceVars } = end.data;
    archived.push({
      key,
      name: name ?? pipelineNameOf(key),
      ...(instanceVars ? { instanceVars } : {}),
      ref: name ? formatPipelineRef({ name, instanceVars }) : key,
    });
  });
  return archived;
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
  last: LastPipeline | undefined,
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
  if (last) input.state.counters = last.counters;
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

/**
 * The input of pipeline `name` that takes over a renamed pipeline's (`input`, which the
 * pipeline of key `from` handed over when it ended): its builds keep their workflow ids under
 * `from`, and numbers go on past `counters`, those of a pipeline once destroyed under `name`.
 */
export function renamedPipelineInput(
  from: string,
  input: PipelineInput,
  name: string,
  counters: Record<string, number> = {},
): PipelineInput {
  const state = structuredClone(input.state);
  for (const b of state.builds) b.workflowPipeline ??= from;
  for (const [job, n] of Object.entries(counters)) state.counters[job] = Math.max(state.counters[job] ?? 0, n);
  state.renamed = { jobs: {}, resources: {}, ...state.renamed, pipelines: [...(state.renamed?.pipelines ?? []), from] };
  return { ...input, state, config: { ...input.config, name } };
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
