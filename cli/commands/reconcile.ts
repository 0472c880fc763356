import { causewayHome, readEnv } from '../../common/config';
import { parseDuration } from '../../schemas';
import { containerdLeftovers, reconcileBuilds } from '../../workers/local';
import { devContainerdDir, readContainerd } from '../dev/containerd';
import { alive } from '../dev/k8s/procs';
import { openSession } from '../connect';
import { CliError, say } from '../output';

export async function reconcile(opts: { retention?: string; dryRun?: boolean; containerdSocket?: string }): Promise<void> {
  let retentionMs: number;
  try {
    retentionMs = parseDuration(opts.retention ?? readEnv().CAUSEWAY_ARTIFACT_RETENTION);
  } catch (err) {
    throw new CliError(`--retention: ${(err as Error).message}`);
  }
  const home = causewayHome();
  const socket = opts.containerdSocket ?? runningDevContainerd(home);
  const session = await openSession({ autoStart: false });
  try {
    const report = await reconcileBuilds({
      home,
      client: session.client,
      retentionMs,
      killGraceMs: 10_000,
      dryRun: opts.dryRun,
      // Closed builds' containers, roots, snapshots and cgroups too, as a containerd worker's own pass removes them.
      removeRuntimeObjects: socket && !opts.dryRun ? containerdLeftovers(home, { socket }) : undefined,
    });
    const verb = opts.dryRun ? 'would stop' : 'stopped';
    for (const s of report.stopped) say(`${verb} pid ${s.pid} of closed build ${s.buildId} (${s.dir})`);
    for (const dir of report.removed) say(`${opts.dryRun ? 'would remove' : 'removed'} ${dir}`);
    for (const build of report.networks) say(`${opts.dryRun ? 'would remove' : 'removed'} the network namespace of closed build ${build}`);
    if (socket)
      say(`${opts.dryRun ? 'would remove' : 'removed'} the containers, roots and snapshots of closed builds in containerd ${socket}`);
    for (const target of report.unmounted) say(`${opts.dryRun ? 'would unmount' : 'unmounted'} input view ${target}`);
    for (const build of report.uids) say(`${opts.dryRun ? 'would release' : 'released'} the uid of closed build ${build}`);
    say(
      `${report.stopped.length} process(es) ${verb}, ${report.removed.length} build(s) ${opts.dryRun ? 'to remove' : 'removed'}, ${report.running} running build(s) left alone`,
    );
  } finally {
    await session.close();
  }
}

/** The socket of `causeway dev up --runtime containerd`'s containerd in this home, when it runs. */
function runningDevContainerd(home: string): string | undefined {
  const state = readContainerd(devContainerdDir(home));
  const daemon = state?.processes.find((p) => p.name === 'containerd');
  return daemon && alive(daemon.pid) ? state?.socket : undefined;
}
