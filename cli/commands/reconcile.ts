import { causewayHome, readEnv } from '../../common/config';
import { parseDuration } from '../../schemas';
import { reconcileBuilds } from '../../workers/local';
import { openSession } from '../connect';
import { CliError, say } from '../output';

export async function reconcile(opts: { retention?: string; dryRun?: boolean }): Promise<void> {
  let retentionMs: number;
  try {
    retentionMs = parseDuration(opts.retention ?? readEnv().CAUSEWAY_ARTIFACT_RETENTION);
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
    for (const build of report.networks) say(`${opts.dryRun ? 'would remove' : 'removed'} the network namespace of closed build ${build}`);
    for (const target of report.unmounted) say(`${opts.dryRun ? 'would unmount' : 'unmounted'} input view ${target}`);
    for (const build of report.uids) say(`${opts.dryRun ? 'would release' : 'released'} the uid of closed build ${build}`);
    say(
      `${report.stopped.length} process(es) ${verb}, ${report.removed.length} build(s) ${opts.dryRun ? 'to remove' : 'removed'}, ${report.running} running build(s) left alone`,
    );
  } finally {
    await session.close();
  }
}
