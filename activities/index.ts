import { finishBuild, prepareBuild } from './build';
import type { ActivityDeps } from './deps';
import { loadVar } from './load-var';
import { probeLocalService, startLocalService, stopLocalService, superviseLocalService } from './runtime/local/service';
import { runLocalTask } from './runtime/local/task';
import type { BuildActivities } from './types';

/** The activities a local-runtime worker registers, bound to its shared dependencies. */
export function createActivities(deps: ActivityDeps): BuildActivities {
  return {
    prepareBuild: (req) => prepareBuild(deps, req),
    runTask: (req) => runLocalTask(deps, req),
    loadVar,
    finishBuild: (req) => finishBuild(deps, req),
    startService: (req) => startLocalService(deps, req),
    probeService: (req) => probeLocalService(deps, req),
    superviseService: (req) => superviseLocalService(deps, req),
    stopService: (req) => stopLocalService(deps, req),
  };
}
