import type { Command } from 'commander';
import { QUERY_DEADLINE_MS, STEPS_LISTED } from '../limits';
import { lazy, positiveCount } from './lazy';

const impl = () => require('../commands/builds') as typeof import('../commands/builds');

export function registerBuilds(program: Command): void {
  program
    .command('builds')
    .description('list recent builds with their plan, status and duration (from Temporal visibility)')
    .option('-n, --limit <count>', 'how many builds', positiveCount('--limit'), 20)
    .option('-c, --count <count>', "fly's name for --limit", positiveCount('--count'))
    .option('--status <status>', 'only builds with this status: started, succeeded, failed, errored, aborted')
    .option('--plan <name>', 'only builds of this plan')
    .option('-j, --job <pipeline/job>', "only builds of a pipeline's job (fly's builds -j)")
    .option('-p, --pipeline <pipeline>', "only builds of a pipeline's jobs (NAME, or NAME/k:v,... for an instance)")
    .option('--since <time>', "only builds started at or after this local time, fly's 'yyyy-mm-dd HH:mm:ss'")
    .option('--until <time>', "only builds started at or before this local time, fly's 'yyyy-mm-dd HH:mm:ss'")
    .option('--json', 'print a JSON array: buildId, runId, plan, status, startTime, closeTime, durationMs, retryOf')
    .addHelpText(
      'after',
      "\nExamples:\n  causeway builds\n  causeway builds --status failed --limit 5\n  causeway builds -p ci --since '2026-12-01 00:00:00'\n  causeway builds --json | jq -r '.[].buildId'",
    )
    .action(lazy(() => impl().builds));

  program
    .command('status')
    .description("show a build's step tree: each step's state, attempts and exit code")
    .argument('<build>', 'build id')
    .option('--json', "print the step tree as JSON: the `status` query's answer (docs/schemas/build-result.v1.json)")
    .option('--all', `list every step even when there are more than ${STEPS_LISTED}`)
    .addHelpText(
      'after',
      `
A finished build's tree is read from its history; a running build's comes from its worker
(the \`status\` query), and when no worker answers within ${QUERY_DEADLINE_MS / 1000} s the command says why and exits 2.
A big build's lists run in child workflows (parts): their steps are asked of them. Above
${STEPS_LISTED} steps the command prints counts by state and the steps that did not succeed.

Examples:
  causeway status build-3f2c…
  causeway status --all build-3f2c…`,
    )
    .action(lazy(() => impl().status));
}
