import { awaitBuild } from '../../common/build-client';
import { EXIT_CODES, EXIT_STILL_RUNNING } from '../exit-codes';
import { readBuild } from '../../common/build-log';
import { buildUrl, openSession } from '../connect';
import { followUntilDone } from '../follow';
import { exitWith } from '../main-helpers';
import { CliError, say } from '../output';
import { BuildRenderer, renderOutcome } from '../render';
import { buildIdOf, parseBuildRef } from './build-ref';
import { describeBuild } from './builds';

export async function watch(
  build: string | undefined,
  opts: { follow: boolean; services?: boolean; job?: string; build?: string; timestamps?: boolean },
): Promise<void> {
  const ref = parseBuildRef(build, opts, 'watch');
  const session = await openSession({ autoStart: false });
  try {
    const buildId = await buildIdOf(session.client, ref);
    const handle = session.client.workflow.getHandle(buildId);
    const info = await describeBuild(handle);
    if (!opts.follow) {
      const renderer = new BuildRenderer(process.stdout, {
        showSteps: () => true,
        showServices: opts.services !== false,
        timestamps: opts.timestamps,
      });
      for await (const r of readBuild(session.nc, buildId, { follow: false })) renderer.write(r);
      if (!info.closeTime) {
        say(`build ${buildId} is still running (exit ${EXIT_STILL_RUNNING}); follow it with: causeway watch ${buildId}`);
        return exitWith(EXIT_STILL_RUNNING);
      }
      return exitWith(EXIT_CODES[(await awaitBuild(handle)).status]);
    }
    const started = info.startTime.getTime();
    const outcome = await followUntilDone(session, handle, {
      abortOnInterrupt: false,
      showServices: opts.services !== false,
      timestamps: opts.timestamps,
    });
    console.log(renderOutcome(buildId, outcome, (info.closeTime ?? new Date()).getTime() - started, buildUrl(session, buildId)));
    exitWith(EXIT_CODES[outcome.status]);
  } finally {
    await session.close();
  }
}

export function notFound(buildId: string): CliError {
  return new CliError(`no build ${buildId}`, 'list recent builds with `causeway builds`');
}
