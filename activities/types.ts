// The activity interface the build workflow calls. Types only: workflow code imports
// this file with `import type`, so nothing here may pull in node modules at run time.
import type { LoadVarStep, TaskStep } from '../schemas/compiled';

/** Where an artifact lives: a directory on one worker's disk (local runtime). */
export interface ArtifactRef {
  worker: string;
  path: string;
}

export type Artifacts = Record<string, ArtifactRef>;

export interface PrepareBuildRequest {
  buildId: string;
  plan: string;
  /** artifact names the CLI uploaded to the object store (`-i name=dir`) */
  uploads: string[];
}

export interface PrepareBuildResult {
  worker: string;
  /** the task queue of that worker, where every step of the build runs */
  taskQueue: string;
  tags: string[];
  artifacts: Artifacts;
}

export interface RunTaskRequest {
  buildId: string;
  runId: string;
  plan: string;
  step: TaskStep;
  /** the key that makes this run of the step unique: attempt numbers of it and its enclosing `attempts` */
  runKey: string;
  attempt: number;
  /** every artifact visible to the step, by name */
  artifacts: Artifacts;
}

export interface RunTaskResult {
  exitCode: number;
  /** outputs by their name after output_mapping */
  outputs: Artifacts;
}

export interface LoadVarRequest {
  buildId: string;
  step: LoadVarStep;
  artifacts: Artifacts;
}

export interface FinishBuildRequest {
  buildId: string;
  runId: string;
  status: 'succeeded' | 'failed' | 'errored' | 'aborted';
  message?: string;
  /** artifacts the CLI asked to download (`-o name=dir`) */
  exports: Artifacts;
}

export interface BuildActivities {
  prepareBuild(req: PrepareBuildRequest): Promise<PrepareBuildResult>;
  runTask(req: RunTaskRequest): Promise<RunTaskResult>;
  loadVar(req: LoadVarRequest): Promise<unknown>;
  finishBuild(req: FinishBuildRequest): Promise<void>;
}
