// The kubernetes runtime as the step layer sees it (activities/runtime/types.ts): task steps and
// services as pods, artifacts in producer pods, the build's objects owned by its anchor.
import type { ActivityDeps } from '../../deps';
import { baseTypeInImage } from '../../step/base-type-image';
import type { Runtime } from '../types';
import { finishKubernetesBuild, readFileOf } from './artifacts';
import type { KubernetesRuntime } from './runtime';
import { serviceActivities } from './service';
import { findOrStartPodTask } from './task';

export { KubernetesRuntime, type KubernetesRuntimeOptions } from './runtime';

export function kubernetesRuntime(deps: ActivityDeps, rt: KubernetesRuntime): Runtime {
  return {
    // Producer pods hold their outputs: the workflow says when no step can read them any more.
    releasesArtifacts: true,
    runsContainers: true,
    runsHostScripts: false,
    findOrStartTask: async (task, io) => {
      // A base type's scripts run in a pod of its image (CAUSEWAY_RESOURCE_IMAGES), as an image type's.
      if (task.req.onHost)
        return findOrStartPodTask(rt, baseTypeInImage(task, rt.opts.resourceImages, "a kubernetes worker's steps run only in pods"), io);
      return findOrStartPodTask(rt, task, io);
    },
    readArtifactFile: (f, what) => readFileOf(rt, f.buildId, f.ref, f.artifact, f.rel, what),
    releaseArtifacts: (refs) => rt.releaseArtifacts(refs),
    // Exports (-o) come straight from the producer pods, before the anchor goes; then the
    // garbage collector takes every pod, Service, NetworkPolicy and Secret of the build.
    finishBuild: (req) => finishKubernetesBuild(deps, rt, req),
    services: serviceActivities(deps, rt),
  };
}
