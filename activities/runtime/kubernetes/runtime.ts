// The kubernetes runtime: the API access of api.ts plus what the activities ask of a runtime
// (a task step run to its end, artifacts released). See docs/kubernetes.md.
import type { ArtifactRef, RunTaskRequest } from '../../types';
import { KubeApi } from './api';
import { podInformer } from './pod-watcher';
import { runPodTask, type StepHooks, type StepOutcome } from './task';

export type { KubernetesRuntimeOptions } from './api';

export class KubernetesRuntime extends KubeApi {
  /** Runs a task step to its end: exit code, outputs, or StepErrored / StepDetached / aborted. */
  runStep(req: RunTaskRequest, hooks: StepHooks = {}): Promise<StepOutcome> {
    return runPodTask(this, req, hooks);
  }

  /** Ends the pod informer's watch (worker shutdown); a later step starts it again. */
  close(): Promise<void> {
    return podInformer(this).stop();
  }

  /** Deletes the producer pods holding these artifacts (no step reads them any more). */
  async releaseArtifacts(refs: ArtifactRef[]): Promise<void> {
    const pods = new Set(refs.flatMap((ref) => (ref.kind === 'pod' ? [ref.pod] : [])));
    for (const pod of pods) await this.deletePod(pod, 0);
  }
}
