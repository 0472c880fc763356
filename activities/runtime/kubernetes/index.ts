// The activities a kubernetes-runtime worker registers: the shared ones (claiming a build,
// load_var, finishing it) plus task steps as pods. Services are not on this runtime yet.
import { ApplicationFailure } from '@temporalio/common';
import { createActivities } from '../..';
import { STEP_CONFIG_ERROR, type ActivityDeps } from '../../deps';
import type { BuildActivities } from '../../types';
import { runKubernetesTask, type KubernetesRuntime } from './task';

export { KubernetesRuntime, type KubernetesRuntimeOptions } from './task';

function servicesUnsupported(): never {
  throw ApplicationFailure.create({
    type: STEP_CONFIG_ERROR,
    message: 'services: are not supported by the kubernetes runtime yet (they run on the local runtime); run this build on a local worker',
    nonRetryable: true,
  });
}

export function createKubernetesActivities(deps: ActivityDeps, rt: KubernetesRuntime): BuildActivities {
  const base = createActivities(deps);
  return {
    ...base,
    runTask: (req) => runKubernetesTask(deps, rt, req),
    startService: async () => servicesUnsupported(),
    probeService: async () => servicesUnsupported(),
    superviseService: async () => servicesUnsupported(),
    // Teardown of a service that never started: nothing to do.
    stopService: async () => undefined,
    // The build is over: its anchor goes, and the garbage collector takes every pod and
    // Secret of the build with it (kept producer pods included).
    finishBuild: async (req) => {
      await base.finishBuild(req);
      await rt.deleteBuild(req.buildId);
    },
  };
}
