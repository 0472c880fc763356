import type { WorkflowExecutionDescription, WorkflowHandle } from '@temporalio/client';
import { buildStatusOf, outcomeOf, statusClause } from '../../common/build-client';
import { CausewayPlan, CausewayRetryOf, CausewayStatus } from '../../common/search-attributes';
import { BUILD_WORKFLOW, type BuildSummary } from '../../schemas/build';
import { parsePipelineChildRef, pipelineKey } from '../../schemas/instance-vars';
import { expandParts } from '../../common/build-status';
import { openSession, type Session } from '../connect';
import { CliError, formatDuration, paint, printJson, table } from '../output';
import { renderStepCounts, renderSteps } from '../render';
import { QUERY_DEADLINE_MS, STEPS_LISTED } from '../limits';
import { whyWaiting } from '../waiting';

/** A build's Temporal description, or a clear "no such build". */
export async function describeBuild(handle: WorkflowHandle): Promise<WorkflowExecutionDescription> {
  try {
    return await handle.describe();
  } catch (err) {
    if ((err as Error).name === 'WorkflowNotFoundError') {
      throw new CliError(`no build ${handle.workflowId}`, 'list recent builds with `causeway builds`');
    }
    throw err;
  }
}

const STATUS_COLORS = { succeeded: 'green', failed: 'red', errored: 'yellow', aborted: 'magenta', started: 'cyan' } as const;

export async function builds(opts: { limit: number; status?: string; plan?: string; job?: string; json?: boolean }): Promise<void> {
  if (opts.status && !(opts.status in STATUS_COLORS)) {
    throw new CliError(`unknown status ${opts.status}`, `one of: ${Object.keys(STATUS_COLORS).join(', ')}`);
  }
  const session = await openSession({ autoStart: false });
  try {
    const clauses = [`WorkflowType = '${BUILD_WORKFLOW}'`];
    if (opts.status) clauses.push(statusClause(opts.status as keyof typeof STATUS_COLORS));
    if (opts.plan) clauses.push(`CausewayPlan = '${opts.plan.replace(/'/g, "\\'")}'`);
    if (opts.job) {
      let parsed: ReturnType<typeof parsePipelineChildRef>;
      try {
        parsed = parsePipelineChildRef(opts.job, 'job');
      } catch (err) {
        throw new CliError(
          `-j ${opts.job}: ${(err as Error).message}`,
          'e.g. -j booklit/unit, or -j pr/branch:feature-x/unit for an instance',
        );
      }
      // Builds carry the pipeline's key (an instance's is not its name).
      const pipeline = pipelineKey(parsed.pipeline);
      const job = parsed.name;
      clauses.push(`CausewayPipeline = '${pipeline.replace(/'/g, "\\'")}' AND CausewayJob = '${job.replace(/'/g, "\\'")}'`);
    }
    const rows = [['BUILD', 'RUN', 'PLAN', 'STATUS', 'STARTED', 'DURATION', 'LINEAGE']];
    const builds: object[] = [];
    for await (const wf of session.client.workflow.list({ query: clauses.join(' AND '), pageSize: opts.limit })) {
      if (builds.length >= opts.limit) break;
      const status = buildStatusOf(wf.typedSearchAttributes.get(CausewayStatus), wf.status.name);
      const color = STATUS_COLORS[status as keyof typeof STATUS_COLORS];
      const end = wf.closeTime ?? new Date();
      const retryOf = wf.typedSearchAttributes.get(CausewayRetryOf);
      builds.push({
        buildId: wf.workflowId,
        runId: wf.runId,
        plan: wf.typedSearchAttributes.get(CausewayPlan) ?? null,
        status,
        startTime: wf.startTime.toISOString(),
        closeTime: wf.closeTime?.toISOString() ?? null,
        durationMs: end.getTime() - wf.startTime.getTime(),
        retryOf: retryOf ?? null,
      });
      rows.push([
        wf.workflowId,
        wf.runId.slice(0, 8),
        wf.typedSearchAttributes.get(CausewayPlan) ?? '-',
        color ? paint(color, status) : status,
        wf.startTime.toISOString().replace('T', ' ').slice(0, 19),
        formatDuration(end.getTime() - wf.startTime.getTime()) + (wf.closeTime ? '' : ' (running)'),
        retryOf ? `retry of run ${retryOf.slice(0, 8)}` : '',
      ]);
    }
    if (opts.json) return printJson(builds);
    console.log(rows.length === 1 ? 'no builds yet: start one with `causeway run PLAN.yml`' : table(rows));
  } finally {
    await session.close();
  }
}

export async function status(buildId: string, opts: { json?: boolean; all?: boolean }): Promise<void> {
  const session = await openSession({ autoStart: false });
  try {
    const handle = session.client.workflow.getHandle(buildId);
    const info = await describeBuild(handle);
    const own = info.closeTime ? await summaryFromResult(handle) : await queryStatus(session, handle);
    const summary = await expandParts(session.client, own);
    if (opts.json) return printJson(summary);
    console.log(`${paint('bold', buildId)} ${summary.plan}: ${summary.status}${summary.message ? ` — ${summary.message}` : ''}`);
    console.log(
      opts.all || summary.steps.length <= STEPS_LISTED ? renderSteps(summary.steps) : renderStepCounts(summary.steps, STEPS_LISTED),
    );
  } finally {
    await session.close();
  }
}

/** A closed build's summary is its result (or its failure's details): no worker needs to replay it. */
async function summaryFromResult(handle: WorkflowHandle): Promise<BuildSummary> {
  try {
    return (await handle.result()) as BuildSummary;
  } catch (err) {
    const outcome = outcomeOf(err);
    if (outcome.summary) return outcome.summary;
    // Terminated, timed out, or failed before its first step: no tree, only how it ended.
    const info = await handle.describe();
    return {
      buildId: handle.workflowId,
      plan: info.typedSearchAttributes.get(CausewayPlan) ?? '-',
      status: outcome.status,
      message: outcome.message,
      startedAt: info.startTime.toISOString(),
      finishedAt: info.closeTime?.toISOString(),
      steps: [],
    };
  }
}

async function queryStatus(session: Session, handle: WorkflowHandle): Promise<BuildSummary> {
  try {
    return await session.client.withDeadline(Date.now() + QUERY_DEADLINE_MS, () => handle.query<BuildSummary>('status'));
  } catch (err) {
    const why = await whyWaiting(session).catch(() => undefined);
    throw new CliError(
      `build ${handle.workflowId} is running but no worker answered its status query within ${QUERY_DEADLINE_MS / 1000} s (${(err as Error).message})${why ? `: ${why.reason}` : ''}`,
      why?.fix ?? 'see `causeway workers`',
    );
  }
}
