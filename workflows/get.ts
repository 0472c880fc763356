import type { GetStep, ResourceVersion } from '../schemas/compiled';
import { StepError, type BuildContext, type Frame } from './context';
import { withLocals } from './locals';
import { fetchVersion, runResourceScript, versionsOf } from './resource';

/**
 * `get`: fetches a version of a resource into the artifact named by `get:`. In a one-off
 * build, `latest` and `every` both mean the newest version `check` reports (there is no
 * version history to walk); a pinned version is fetched without a check. `passed` and
 * `trigger` matter only to a pipeline's scheduler.
 */
export async function runGet(ctx: BuildContext, raw: GetStep, frame: Frame): Promise<boolean> {
  const step = withLocals({ ...raw, hooks: undefined, across: undefined }, frame);
  let version: ResourceVersion;
  if (typeof step.version === 'object') version = step.version;
  else {
    const { response } = await runResourceScript(ctx, step, frame, {
      script: 'check',
      request: { source: step.resource.source, version: null },
    });
    const versions = versionsOf(step.resource.name, response);
    if (versions.length === 0) throw new StepError(`resource ${step.resource.name}: check found no version to fetch`);
    version = versions[versions.length - 1];
  }
  await fetchVersion(ctx, step, frame, version, step.params);
  return true;
}
