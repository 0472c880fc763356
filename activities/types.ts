// The activity interface the build workflow calls. Types only: workflow code imports
// this file with `import type`, so nothing here may pull in node modules at run time.
import type { ServiceAddress } from '../common/services';
import type { BuildOutcome, SetBy } from '../schemas/pipeline-api';
import type {
  CompiledPlan,
  LoadVarStep,
  ResourceRef,
  ResourceVersion,
  ServiceSpec,
  SetPipelineStep,
  TaskStep,
  VarSourceConfig,
} from '../schemas/compiled';

/** An artifact in a directory on one worker's disk: every output of the local runtime, and `-i` uploads on any runtime. */
export interface DirArtifactRef {
  kind: 'dir';
  worker: string;
  path: string;
}

/** An output of a producer pod (kubernetes runtime), served by its output-streamer; `path` is the output's path in the pod's work dir. */
export interface PodArtifactRef {
  kind: 'pod';
  worker: string;
  pod: string;
  path: string;
}

/** Where an artifact lives; the workflow passes it along without looking inside. */
export type ArtifactRef = DirArtifactRef | PodArtifactRef;

export type Artifacts = Record<string, ArtifactRef>;

export interface PrepareBuildRequest {
  buildId: string;
  plan: string;
  /** Concourse's pipeline in credential lookup paths: a job build's pipeline; absent: `plan` */
  pipeline?: string;
  /** artifact names the CLI uploaded to the object store (`-i name=dir`) */
  uploads: string[];
  /** the plan's var_sources and the credential refs it leaves to the worker: checked before the first step */
  varSources?: VarSourceConfig[];
  deferredVars?: { ref: string; at: string }[];
  /** the gets and puts whose resource type is an image: a runtime without containers refuses the build before its first step */
  imageTypes?: ImageTypeUse[];
}

/** A get or put whose resource type's scripts run in a container of the type's image. */
export interface ImageTypeUse {
  /** file:line of the step */
  at: string;
  resource: string;
  type: string;
}

export interface PrepareBuildResult {
  worker: string;
  /** the task queue of that worker, where every step of the build runs */
  taskQueue: string;
  tags: string[];
  artifacts: Artifacts;
  /** the runtime holds artifacts in live objects (kubernetes: producer pods), freed by releaseArtifacts */
  releasesArtifacts?: boolean;
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
  /** the services in the step's scope: env vars, and the network namespace the step joins */
  services?: Record<string, ServiceAddress>;
  /** when the earliest enclosing `timeout` expires (epoch ms): a cancellation after it is logged as a timeout, not an abort */
  deadline?: number;
  /** the plan's var_sources: the activity resolves the step's credential refs itself */
  varSources?: VarSourceConfig[];
  /** Concourse's pipeline in credential lookup paths: a job build's pipeline; absent: `plan` */
  pipeline?: string;
  /** values of load_vars without `reveal: true` in the step's scope, redacted from its logs as Concourse does */
  redact?: unknown[];
  /**
   * A get's or put's resource script: its request (source, version, params) with credential
   * refs as text; the activity resolves them in the parsed value and hands the script the JSON
   * as CAUSEWAY_RESOURCE_REQUEST, so no value enters the history.
   */
  resource?: { name: string; request: unknown; deferredVars?: { ref: string; at: string }[] };
  /**
   * A task that exits non-zero fails the activity (non-retryable, type TaskFailed, this result in
   * its details) so the Temporal UI draws it failed; unset by builds whose history predates that
   * and expect a completed activity with the exit code.
   */
  failWhenTaskFails?: boolean;
  /**
   * A base resource type's check/in/out (resources/<type>/, a host executable): it runs as a
   * process on the worker's host whatever the runtime runs tasks in, as a Concourse worker runs
   * its base types from a rootfs of its own (docs/pipelines.md).
   */
  onHost?: boolean;
  /**
   * Which base type an `onHost` task runs (git, time, registry-image, mock), so a runtime with no host
   * to run it on can run the type's image instead (activities/step/base-type-image.ts).
   */
  baseType?: string;
  /**
   * An image resource type's check/in/out: its container reaches the network as the worker does
   * (the registry, the git server its source names), as Concourse's resource containers do.
   */
  resourceContainer?: boolean;
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

export interface SetPipelineRequest {
  buildId: string;
  runId: string;
  /** as RunTaskRequest's: absent in requests scheduled before it was added (one attempt then) */
  runKey?: string;
  attempt?: number;
  /** where credential refs in the step's name and vars are looked up (Concourse's pipeline), and the plan's var sources */
  credentialsPipeline?: string;
  varSources?: VarSourceConfig[];
  /** `self` already replaced by the build's pipeline's name */
  step: SetPipelineStep;
  /** the key of the build's pipeline when the step is `set_pipeline: self`: an instance sets itself, its instance vars included */
  self?: string;
  artifacts: Artifacts;
  /** where a pipeline that does not run yet is started */
  pipelineTaskQueue: string;
  /** the job build running the step (absent in a one-off build): a pipeline set by a newer build refuses it */
  by?: SetBy;
}

export interface FinishBuildRequest {
  buildId: string;
  runId: string;
  status: 'succeeded' | 'failed' | 'errored' | 'aborted';
  message?: string;
  /** artifacts the CLI asked to download (`-o name=dir`) */
  exports: Artifacts;
}

export interface ReleaseArtifactsRequest {
  buildId: string;
  /** one producer's outputs, by the names they were bound to */
  names: string[];
  refs: ArtifactRef[];
}

/** Names one service instance: idempotent by build, run, owning step (scope), run key and name. */
export interface ServiceRef {
  buildId: string;
  runId: string;
  /** the step whose `services:` started it */
  scopeStepId: string;
  runKey: string;
  name: string;
  /** load_var values (without `reveal: true`) in scope: redacted from the service's log, as from a task's (with credential values, see activities/step/service.ts) */
  redact?: unknown[];
  /** the plan's var_sources: the activity resolves the service's credential refs itself */
  varSources?: VarSourceConfig[];
  /** the credential refs startService resolved (text, never values): probe and supervise look them up again to redact their values */
  credentials?: string[];
  /** Concourse's pipeline in lookup paths (a job build's pipeline, else the plan's name): given with `credentials` */
  plan?: string;
}

export interface StartServiceRequest extends ServiceRef {
  plan: string;
  /** ((.:locals)) interpolated; ((.svc:...)) not yet: the runtime knows where the scope's services answer */
  spec: ServiceSpec;
  /** host and ports allocated by the workflow (where the local runtime puts it in loopback mode); the activity adds the network */
  address: ServiceAddress;
  /** every service in scope (outer steps' and this step's), as the workflow knows them */
  scope: Record<string, ServiceAddress>;
  /** the services this step starts (this one included): their hosts in `scope` are the workflow's pre-allocated ones */
  siblings: string[];
  artifacts: Artifacts;
}

export interface StartServiceResult {
  address: ServiceAddress;
  offsets: ServiceLogOffsets;
  /** the credential refs the service's spec used (text, never values), for its later activities (ServiceRef.credentials) */
  credentials?: string[];
}

/** Bytes of the service's output already on NATS, so the next activity resumes there. */
export interface ServiceLogOffsets {
  stdout: number;
  stderr: number;
  notes: number;
}

export interface ProbeServiceRequest extends ServiceRef {
  address: ServiceAddress;
  offsets: ServiceLogOffsets;
}

export interface SuperviseServiceRequest extends ServiceRef {
  offsets: ServiceLogOffsets;
  gracePeriodMs: number;
}

export interface StopServiceRequest extends ServiceRef {
  gracePeriodMs: number;
}

export interface PendingActivities {
  /** by activity id: whether a worker has started it */
  states: Record<string, 'scheduled' | 'started'>;
  /** the queue's worker is running (the registry): a scheduled activity is queued behind its limits, not waiting for a worker */
  workerRunning: boolean;
}

export interface BuildActivities {
  prepareBuild(req: PrepareBuildRequest): Promise<PrepareBuildResult>;
  /** A local activity: the workflow's activities not yet finished, by activity id, and whether a worker has started them. */
  pendingActivities(req: { workflowId: string; runId: string; taskQueue: string }): Promise<PendingActivities>;
  runTask(req: RunTaskRequest): Promise<RunTaskResult>;
  loadVar(req: LoadVarRequest): Promise<unknown>;
  /** ok false: the file is not a valid pipeline (its problems are in the step's log) */
  setPipeline(req: SetPipelineRequest): Promise<{ ok: boolean }>;
  finishBuild(req: FinishBuildRequest): Promise<void>;
  /** starts the service's process (or finds it) in the build's network; returns its address */
  startService(req: StartServiceRequest): Promise<StartServiceResult>;
  /** resolves when the service is ready: its ports accept connections, or its startup probe passes */
  probeService(req: ProbeServiceRequest): Promise<ServiceLogOffsets>;
  /** streams the service's output until it ends (stopService ends it); returns its exit status */
  superviseService(req: SuperviseServiceRequest): Promise<{ exitCode?: number }>;
  /** SIGTERM, then SIGKILL after the grace period; a no-op when it is gone */
  stopService(req: StopServiceRequest): Promise<void>;
  /** no step can read these artifacts any more: the runtime may free what holds them */
  releaseArtifacts(req: ReleaseArtifactsRequest): Promise<void>;
}

/** The activities of the pipeline workflow (workflows/pipeline.ts), run as local activities by whichever worker runs it. */
export interface PipelineActivities {
  /** runs the resource type's `check` from `from` (null: the first check); the versions it printed, oldest first */
  checkResource(req: {
    /** the pipeline's key (its name, or an instance's NAME+...): its check lease; credentials are looked up under its name */
    pipeline: string;
    resource: ResourceRef;
    /** the pipeline's var_sources, for the credential refs in the resource's source */
    varSources?: VarSourceConfig[];
    from: ResourceVersion | null;
    /** check_timeout; absent in histories from before it (Concourse's default, 1 h) */
    timeoutMs?: number;
  }): Promise<ResourceVersion[]>;
  /**
   * the task queue of a worker whose runtime runs containers, for the check of an image type
   * (`resource` names it in the error when no worker of `taskQueue` can)
   */
  containerWorker(req: { resource: string; taskQueue: string }): Promise<string>;
  /**
   * whether the pipeline that a job build (`setBy`) set is abandoned: its parent pipeline is
   * gone (destroyed, archived) or no longer sets it (abandonedBy); the reason, or undefined
   * (also when the parent does not answer: a pipeline is not archived on a doubt)
   */
  abandoned(req: { setBy: SetBy }): Promise<string | undefined>;
  /** starts a job's build workflow; a second start of the same id is a no-op */
  startJobBuild(req: {
    workflowId: string;
    taskQueue: string;
    /** the pipeline's key, the build's CausewayPipeline */
    pipeline: string;
    /** an instance's vars, for the build's summary in the Temporal UI */
    instanceVars?: Record<string, unknown>;
    job: string;
    number: number;
    plan: CompiledPlan;
  }): Promise<void>;
  /** how the closed ones among these builds ended; running ones are left out */
  buildOutcomes(req: { workflowIds: string[] }): Promise<Record<string, BuildOutcome>>;
}
