import type { WorkflowExecutionDescription, WorkflowHandle } from '@temporalio/client';
import { buildStatusOf, outcomeOf, statusClause } from '../../common/build-client';
import { CausewayPlan, CausewayRetryOf, CausewayStatus } from '../../common/search-attributes';
import { BUILD_WORKFLOW, type BuildSummary } from '../../schemas/build';
import { parsePipelineChildRef, parsePipelineRef, pipelineKey } from '../../schemas/instance-vars';
import { expandParts } from '../../common/build-status';
import { lastPipelineView } from '../../common/pipeline-set';
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

/**
 * A run id as the table shows it: its last 8 hex digits. The server's run ids are UUIDv7, whose
 * first 8 digits are the start time's top bits, the same for every run started within a minute
 * (a build and its retry showed the same "run").
 */
const shortRun = (runId: string) => runId.replace(/-/g, '').slice(-8);

const quoted = (value: string) => `'${value.replace(/'/g, "\\'")}'`;

/** fly's `--since`/`--until` time, 'yyyy-mm-dd HH:mm:ss' in the local time zone, as a visibility query's RFC 3339. */
function flyTime(flag: string, value: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/.exec(value);
  const t = m && new Date(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  if (!t || t.getMonth() !== +m[2] - 1 || t.getDate() !== +m[3])
    throw new CliError(
      `${flag} ${value}: the time should be in the format yyyy-mm-dd HH:mm:ss`,
      `e.g. ${flag} '2026-12-01 09:30:00' (local time)`,
    );
  return t.toISOString();
}

export async function builds(opts: {
  limit: number;
  count?: number;
  status?: string;
  plan?: string;
  job?: string;
  pipeline?: string;
  since?: string;
  until?: string;
  json?: boolean;
}): Promise<void> {
  if (opts.status && !(opts.status in STATUS_COLORS)) {
    throw new CliError(`unknown status ${opts.status}`, `one of: ${Object.keys(STATUS_COLORS).join(', ')}`);
  }
  if (opts.job && opts.pipeline)
    throw new CliError('cannot give both --pipeline and --job', '-j names one job, -p every job of a pipeline');
  const since = opts.since === undefined ? undefined : flyTime('--since', opts.since);
  const until = opts.until === undefined ? undefined : flyTime('--until', opts.until);
  if (since && until && since > until) throw new CliError(`--since ${opts.since} is after --until ${opts.until}`);
  const limit = opts.count ?? opts.limit;
  const clauses = [`WorkflowType = '${BUILD_WORKFLOW}'`];
  if (opts.status) clauses.push(statusClause(opts.status as keyof typeof STATUS_COLORS));
  if (opts.plan) clauses.push(`CausewayPlan = ${quoted(opts.plan)}`);
  let byPipeline: string | undefined;
  if (opts.pipeline) {
    let ref: ReturnType<typeof parsePipelineRef>;
    try {
      ref = parsePipelineRef(opts.pipeline);
    } catch (err) {
      throw new CliError(`-p ${opts.pipeline}: ${(err as Error).message}`, 'e.g. -p booklit, or -p pr/branch:feature-x for an instance');
    }
    byPipeline = pipelineKey(ref);
  }
  if (since) clauses.push(`StartTime >= '${since}'`);
  if (until) clauses.push(`StartTime <= '${until}'`);
  const session = await openSession({ autoStart: false });
  try {
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
      const { keys, renamed } = await formerNames(session, pipeline);
      const jobs = [parsed.name, ...Object.entries(renamed.jobs ?? {}).flatMap(([before, now]) => (now === parsed.name ? [before] : []))];
      clauses.push(`CausewayPipeline IN (${keys.map(quoted).join(', ')}) AND CausewayJob IN (${jobs.map(quoted).join(', ')})`);
    }
    if (byPipeline) clauses.push(`CausewayPipeline IN (${(await formerNames(session, byPipeline)).keys.map(quoted).join(', ')})`);
    const rows = [['BUILD', 'RUN', 'PLAN', 'STATUS', 'STARTED', 'DURATION', 'LINEAGE']];
    const builds: object[] = [];
    for await (const wf of session.client.workflow.list({ query: clauses.join(' AND '), pageSize: limit })) {
      if (builds.length >= limit) break;
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
        shortRun(wf.runId),
        wf.typedSearchAttributes.get(CausewayPlan) ?? '-',
        color ? paint(color, status) : status,
        wf.startTime.toISOString().replace('T', ' ').slice(0, 19),
        formatDuration(end.getTime() - wf.startTime.getTime()) + (wf.closeTime ? '' : ' (running)'),
        retryOf ? `retry of run ${shortRun(retryOf)}` : '',
      ]);
    }
    if (opts.json) return printJson(builds);
    console.log(rows.length === 1 ? 'no builds yet: start one with `causeway run PLAN.yml`' : table(rows));
  } finally {
    await session.close();
  }
}

/**
 * A pipeline's key with those it had before rename-pipeline, and its old_name renames: its
 * builds from before carry those names. Only the pipeline itself knows them; none when it
 * does not answer (destroyed, or no worker).
 */
async function formerNames(session: Session, key: string): Promise<{ keys: string[]; renamed: { jobs?: Record<string, string> } }> {
  const last = await lastPipelineView(session.client, key).catch(() => undefined);
  const renamed: { jobs?: Record<string, string>; pipelines?: string[] } = last?.running ? (last.view.state.renamed ?? {}) : {};
  return { keys: [key, ...(renamed.pipelines ?? [])], renamed };
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
