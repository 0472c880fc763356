import { prepareBuild } from './build';
import type { ActivityDeps } from './deps';
import { atEdge } from './errors';
import { heartbeating } from './heartbeat';
import { loadVar } from './load-var';
import { pendingActivities } from './pending';
import type { Runtime } from './runtime/types';
import { serviceActivities } from './step/service';
import { runTask } from './step/task';
import { pipelineActivities } from './pipeline';
import { setPipeline } from './set-pipeline';
import type { BuildActivities, PipelineActivities } from './types';

/**
 * The activities every worker registers, the same for every runtime, bound to its shared
 * dependencies and its runtime; the pipeline workflow's run as local activities wherever it runs.
 */
export function createActivities(deps: ActivityDeps, runtime: Runtime): BuildActivities & PipelineActivities {
  const services = serviceActivities(deps, runtime);
  return {
    ...pipelineActivities(deps, runtime),
    // A local activity (workflows/build.ts): those cannot heartbeat.
    prepareBuild: (req) => atEdge(() => prepareBuild(deps, runtime, req)),
    pendingActivities: (req) => pendingActivities(deps, req),
    runTask: (req) => runTask(deps, runtime, req),
    loadVar: (req) => heartbeating(() => atEdge(() => loadVar(runtime, req))),
    setPipeline: (req) => heartbeating(() => atEdge(() => setPipeline(deps, runtime, req))),
    finishBuild: (req) => heartbeating(() => atEdge(() => runtime.finishBuild(req))),
    // Services fail through the same edge as tasks: ServiceFailed for good, StepDetached handed over.
    startService: (req) => atEdge(() => services.startService(req)),
    probeService: (req) => atEdge(() => services.probeService(req)),
    superviseService: (req) => atEdge(() => services.superviseService(req)),
    stopService: (req) => atEdge(() => services.stopService(req)),
    releaseArtifacts: (req) => runtime.releaseArtifacts(req.refs),
  };
}
