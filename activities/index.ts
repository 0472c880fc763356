import { finishBuild, prepareBuild } from './build';
import type { ActivityDeps } from './deps';
import { heartbeating } from './heartbeat';
import { loadVar } from './load-var';
import { probeLocalService, startLocalService, stopLocalService, superviseLocalService } from './runtime/local/service';
import { warmUpSpawner } from './runtime/local/spawner';
import { runLocalTask } from './runtime/local/task';
import type { BuildActivities } from './types';

/** The activities a local-runtime worker registers, bound to its shared dependencies. */
export function createActivities(deps: ActivityDeps): BuildActivities {
  // The process helper starts with the worker, not with its first step.
  warmUpSpawner();
  return {
    // A local activity (workflows/build.ts): those cannot heartbeat.
    prepareBuild: (req) => prepareBuild(deps, req),
    runTask: (req) => runLocalTask(deps, req),
    loadVar: (req) => heartbeating(() => loadVar(req)),
    finishBuild: (req) => heartbeating(() => finishBuild(deps, req)),
    startService: (req) => startLocalService(deps, req),
    probeService: (req) => probeLocalService(deps, req),
    superviseService: (req) => superviseLocalService(deps, req),
    stopService: (req) => stopLocalService(deps, req),
    // Artifact directories stay for `causeway retry`; the reconciler deletes them after their
    // retention (prepareBuild does not ask the workflow to release them).
    releaseArtifacts: async () => undefined,
  };
}
