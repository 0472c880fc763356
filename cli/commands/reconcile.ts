import type { Command } from 'commander';
import { causewayHome, readEnv } from '../../common/config';
import { parseDuration } from '../../schemas';
import { reconcileBuilds } from '../../workers/local';
import { openSession } from '../connect';
import { CliError, say } from '../output';

export function registerReconcile(program: Command): void {
  program
    .command('reconcile')
    .description('stop what closed builds left running on this host and delete artifacts past their retention')
    .option(
      '--retention <duration>',
      "keep closed builds' artifacts this long for `causeway retry` (Go duration)",
      readEnv().CAUSEWAY_ARTIFACT_RETENTION,
    )
    .option('--dry-run', 'only report what would be stopped or removed')
    .addHelpText(
      'after',
      `
Workers do this every CAUSEWAY_RECONCILE_INTERVAL (default 1m); run it by hand after
\`temporal workflow terminate\`, which ends a build without running its teardown.

Examples:
  causeway reconcile --dry-run
  causeway reconcile --retention 2h`,
    )
    .action(async (opts: { retention: string; dryRun?: boolean }) => {
      let retentionMs: number;
      try {
        retentionMs = parseDuration(opts.retention);
      } catch (err) {
        throw new CliError(`--retention: ${(err as Error).message}`);
      }
      const session = await openSession({ autoStart: false });
      try {
        const report = await reconcileBuilds({
          home: causewayHome(),
          client: session.client,
          retentionMs,
          killGraceMs: 10_000,
          dryRun: opts.dryRun,
        });
        const verb = opts.dryRun ? 'would stop' : 'stopped';
        for (const s of report.stopped) say(`${verb} pid ${s.pid} of closed build ${s.buildId} (${s.dir})`);
        for (const dir of report.removed) say(`${opts.dryRun ? 'would remove' : 'removed'} ${dir}`);
        for (const build of report.networks)
          say(`${opts.dryRun ? 'would remove' : 'removed'} the network namespace of closed build ${build}`);
        for (const target of report.unmounted) say(`${opts.dryRun ? 'would unmount' : 'unmounted'} input view ${target}`);
        for (const build of report.uids) say(`${opts.dryRun ? 'would release' : 'released'} the uid of closed build ${build}`);
        say(
          `${report.stopped.length} process(es) ${verb}, ${report.removed.length} build(s) ${opts.dryRun ? 'to remove' : 'removed'}, ${report.running} running build(s) left alone`,
        );
      } finally {
        await session.close();
      }
    });
}
