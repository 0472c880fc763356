// The Runtime interface: all a runtime implements (Concourse's atc/runtime/types.go spirit).
// Everything else about a step (config resolution, input mapping, ((.svc)), events, heartbeats,
// abort and handover, error translation) is the step layer's (activities/step/), written once.
import type { ServiceAddress } from '../../common/services';
import type { TaskConfig } from '../../schemas/compiled';
import type {
  ArtifactRef,
  Artifacts,
  FinishBuildRequest,
  ProbeServiceRequest,
  RunTaskRequest,
  ServiceLogOffsets,
  StartServiceRequest,
  StopServiceRequest,
  SuperviseServiceRequest,
} from '../types';

/** One file of an artifact: `rel` inside the artifact named `artifact`, which `ref` locates. */
export interface ArtifactFile {
  buildId: string;
  artifact: string;
  ref: ArtifactRef;
  rel: string;
}

/** What the step layer gives a runtime's task: where its previous attempt got to, heartbeats, notes in the step's log. */
export interface StepIo {
  /** the last heartbeat's details of a previous attempt of this activity (log offsets), if any */
  resume?: unknown;
  /** heartbeats now with these details (the step layer also heartbeats every second with the last ones) */
  beat(details: unknown): void;
  /** a line from Causeway itself in the step's log, not waited for */
  note(text: string): void;
}

export type TaskOutcome = { state: 'succeeded' | 'failed'; exitCode: number; outputs: Artifacts } | { state: 'aborted' };

/** A task found running (re-attached) or just started. */
export interface TaskHandle {
  reattached: boolean;
  /**
   * Waits for the task's end, streaming its log from where the step's log is. `abort`: stop it
   * (SIGTERM, SIGKILL after the grace) and end `aborted`; `detach`: the worker is going away,
   * leave it running and throw StepDetached.
   */
  wait(signals: { abort: AbortSignal; detach: AbortSignal }): Promise<TaskOutcome>;
}

/** A service's lifecycle, as the activities of the same names (types.ts) describe it. */
export interface ServiceRuntime {
  startService(req: StartServiceRequest): Promise<{ address: ServiceAddress; offsets: ServiceLogOffsets }>;
  probeService(req: ProbeServiceRequest): Promise<ServiceLogOffsets>;
  superviseService(req: SuperviseServiceRequest): Promise<{ exitCode?: number }>;
  stopService(req: StopServiceRequest): Promise<void>;
}

export interface Runtime {
  /** Holds artifacts in live objects (kubernetes: producer pods) that releaseArtifacts frees; the workflow releases only then. */
  readonly releasesArtifacts: boolean;
  /**
   * Finds the task this run of the step started (idempotent by build, run, step and attempt key)
   * or starts it. `config` is resolved by the step layer; inputs are mapped by it too.
   */
  findOrStartTask(task: ResolvedTask, io: StepIo): Promise<TaskHandle>;
  /** One file of an artifact, as text; throws StepErrored (or any Error, which the step layer words) when it cannot. */
  readArtifactFile(file: ArtifactFile, what: string): Promise<string>;
  /** No step can read these artifacts any more. */
  releaseArtifacts(refs: ArtifactRef[]): Promise<void>;
  /** The build is over: `-o` exports handed to the CLI, build-finished announced, the build's objects removed. */
  finishBuild(req: FinishBuildRequest): Promise<void>;
  readonly services: ServiceRuntime;
}

/** A task step as the step layer hands it to a runtime: the request, its resolved config and its mapped inputs. */
export interface ResolvedTask {
  req: RunTaskRequest;
  /** resolves the config (file, vars, ((.svc))) and maps inputs: called only when the task is not running yet */
  resolve(): Promise<{ config: TaskConfig; inputs: MappedInput[] }>;
}

/** An input of the task config and the artifact that fills it. */
export interface MappedInput {
  name: string;
  /** where in the task's work dir (input.path, else its name) */
  path: string;
  /** the artifact's name in the build (after input_mapping) */
  source: string;
  ref: ArtifactRef;
}
