import type { Command } from 'commander';
import type { WorkflowExecutionDescription, WorkflowHandle } from '@temporalio/client';
import { CausewayPlan, CausewayRetryOf, CausewayStatus } from '../../common/search-attributes';
import { buildStatusOf, statusClause } from '../../common/build-client';
import { fullStatus } from '../../common/build-status';
import { BUILD_WORKFLOW } from '../../workflows/types';
import { openSession } from '../connect';
import { CliError, formatDuration, paint, table } from '../output';
import { renderStepCounts, renderSteps } from '../render';

/** Steps `causeway status` lists by default; beyond, counts by state and the steps that did not succeed. */
const STEPS_LISTED = 200;

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

export function registerBuilds(program: Command): void {
  program
    .command('builds')
    .description('list recent builds with their plan, status and duration (from Temporal visibility)')
    .option('-n, --limit <count>', 'how many builds', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new CliError(`--limit takes a positive whole number, got ${v}`);
      return n;
    }, 20)
    .option('--status <status>', 'only builds with this status: started, succeeded, failed, errored, aborted')
    .option('--plan <name>', 'only builds of this plan')
    .addHelpText('after', '\nExamples:\n  causeway builds\n  causeway builds --status failed --limit 5')
    .action(async (opts: { limit: number; status?: string; plan?: string }) => {
      if (opts.status && !(opts.status in STATUS_COLORS)) {
        throw new CliError(`unknown status ${opts.status}`, `one of: ${Object.keys(STATUS_COLORS).join(', ')}`);
      }
      const session = await openSession({ autoStart: false });
      try {
        const clauses = [`WorkflowType = '${BUILD_WORKFLOW}'`];
        if (opts.status) clauses.push(statusClause(opts.status as keyof typeof STATUS_COLORS));
        if (opts.plan) clauses.push(`CausewayPlan = '${opts.plan.replace(/'/g, "\\'")}'`);
        const rows = [['BUILD', 'RUN', 'PLAN', 'STATUS', 'STARTED', 'DURATION', 'LINEAGE']];
        for await (const wf of session.client.workflow.list({ query: clauses.join(' AND '), pageSize: opts.limit })) {
          const status = buildStatusOf(wf.typedSearchAttributes.get(CausewayStatus), wf.status.name);
          const color = STATUS_COLORS[status as keyof typeof STATUS_COLORS];
          const end = wf.closeTime ?? new Date();
          const retryOf = wf.typedSearchAttributes.get(CausewayRetryOf);
          rows.push([
            wf.workflowId,
            wf.runId.slice(0, 8),
            wf.typedSearchAttributes.get(CausewayPlan) ?? '-',
            color ? paint(color, status) : status,
            wf.startTime.toISOString().replace('T', ' ').slice(0, 19),
            formatDuration(end.getTime() - wf.startTime.getTime()) + (wf.closeTime ? '' : ' (running)'),
            retryOf ? `retry of run ${retryOf.slice(0, 8)}` : '',
          ]);
          if (rows.length > opts.limit) break;
        }
        console.log(rows.length === 1 ? 'no builds yet: start one with `causeway run PLAN.yml`' : table(rows));
      } finally {
        await session.close();
      }
    });

  program
    .command('status')
    .description("show a build's step tree: each step's state, attempts and exit code")
    .argument('<build>', 'build id')
    .option('--all', `list every step even when there are more than ${STEPS_LISTED}`)
    .addHelpText('after', '\nExamples:\n  causeway status build-3f2c…\n  causeway status --all build-3f2c…')
    .action(async (buildId: string, opts: { all?: boolean }) => {
      const session = await openSession({ autoStart: false });
      try {
        const handle = session.client.workflow.getHandle(buildId);
        const described = await describeBuild(handle);
        // Big fan-out runs in child workflows: their steps are asked of them (common/build-status.ts).
        const summary = await fullStatus(session.client, buildId);
        const status = buildStatusOf(summary.status === 'started' ? undefined : summary.status, described.status.name);
        console.log(`${paint('bold', buildId)} ${summary.plan}: ${status}${summary.message ? ` — ${summary.message}` : ''}`);
        console.log(opts.all || summary.steps.length <= STEPS_LISTED ? renderSteps(summary.steps) : renderStepCounts(summary.steps, STEPS_LISTED));
      } finally {
        await session.close();
      }
    });
}
