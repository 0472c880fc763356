// The activities a kubernetes-runtime worker registers: the shared ones (claiming a build,
// load_var, finishing it) plus task steps and services as pods.
import { createActivities } from '../..';
import type { ActivityDeps } from '../../deps';
import type { BuildActivities } from '../../types';
import { finishKubernetesBuild, loadVarFromPods } from './artifacts';
import { serviceActivities } from './service';
import type { KubernetesRuntime } from './runtime';
import { runKubernetesTask } from './task';

export { KubernetesRuntime, type KubernetesRuntimeOptions } from './runtime';

export function createKubernetesActivities(deps: ActivityDeps, rt: KubernetesRuntime): BuildActivities {
  const base = createActivities(deps);
  return {
    ...base,
    runTask: (req) => runKubernetesTask(deps, rt, req),
    loadVar: (req) => loadVarFromPods(rt, req),
    ...serviceActivities(deps, rt),
    // Producer pods hold their outputs: the workflow says when no step can read them any more.
    prepareBuild: async (req) => ({ ...(await base.prepareBuild(req)), releasesArtifacts: true }),
    releaseArtifacts: (req) => rt.releaseArtifacts(req.refs),
    // The build is over: its anchor goes, and the garbage collector takes every pod, Service,
    // NetworkPolicy and Secret of the build with it (kept producer pods included).
    // Exports (-o) come straight from the producer pods, before the anchor goes.
    finishBuild: (req) => finishKubernetesBuild(deps, rt, base.finishBuild, req),
  };
}
