// The Runtime interface: all a runtime implements (Concourse's atc/runtime/types.go spirit).
// Everything else about a step (config resolution, input mapping, ((.svc)), events, heartbeats,
// abort and handover, error translation) is the step layer's (activities/step/), written once.
import type { Readable } from 'node:stream';
import type { ServiceAddress } from '../../common/services';
import type { ServiceConfig, ServiceSpec, TaskConfig } from '../../schemas/compiled';
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

/** What the step layer gives a runtime's task: notes in the step's log (offsets and heartbeats are the step layer's). */
export interface StepIo {
  /** a line from Causeway itself in the step's log, not waited for */
  note(text: string): void;
}

/** How a task ended: its exit code, and its outputs (by their names after output_mapping). */
export interface TaskExit {
  exitCode: number;
  outputs: Artifacts;
}

/** The output streams of a task a runtime keeps apart (kubernetes merges both into stdout, as the kubelet does). */
export type TaskStream = 'stdout' | 'stderr';

/** Bytes of each output stream of a task already in the step's log: where reading resumes (a retried attempt's heartbeat). */
export type LogOffsets = Partial<Record<TaskStream, number>>;

/** Bytes of one output stream of a task from a byte offset; the offset is the piece's message id, so a re-read sends nothing twice. */
export interface LogPiece {
  stream: TaskStream;
  offset: number;
  data: Buffer;
}

/** The signals the step layer sends a task: SIGTERM asks it to stop, SIGKILL ends it. */
export type TaskSignal = 'SIGTERM' | 'SIGKILL';

/**
 * A task found running (re-attached) or just started (Concourse's Process). The step layer
 * drives it (activities/step/follow.ts): reads its log from the offsets it keeps, signals it on
 * abort, stops following it on worker shutdown.
 */
export interface TaskHandle {
  readonly reattached: boolean;
  /**
   * Resolves when the task has ended and all its output can be read (readLogs); throws StepErrored
   * when it can never end normally (its pod was deleted, its image cannot be pulled). A task ended
   * by signal() resolves with the status it got (the runtime may make one up: 128 + the signal).
   * `stop`: resolve `undefined` at once, leaving the task as it is.
   */
  wait(stop: AbortSignal): Promise<TaskExit | undefined>;
  /** Output written after `from`, in order per stream; empty when nothing new is there yet. Never waits for more. */
  readLogs(from: LogOffsets): Promise<LogPiece[]>;
  /** Sends the task a signal; a no-op once it has ended. (kubernetes: deletes its pod with the grace period, or at once.) */
  signal(signal: TaskSignal): Promise<void>;
}

/**
 * A service's start as the step layer hands it to a runtime (activities/step/service.ts): its
 * config inline (a `file:` already read and parsed), credential refs resolved, and `redact`
 * holding every value its log must not show (empty when redaction is off).
 */
export type ResolvedServiceRequest = StartServiceRequest & { spec: ServiceSpec & { config: ServiceConfig } };

/** A service's lifecycle, as the activities of the same names (types.ts) describe it. */
export interface ServiceRuntime {
  startService(req: ResolvedServiceRequest): Promise<{ address: ServiceAddress; offsets: ServiceLogOffsets }>;
  probeService(req: ProbeServiceRequest): Promise<ServiceLogOffsets>;
  superviseService(req: SuperviseServiceRequest): Promise<{ exitCode?: number }>;
  stopService(req: StopServiceRequest): Promise<void>;
}

export interface Runtime {
  /** Holds artifacts in live objects (kubernetes: producer pods) that releaseArtifacts frees; the workflow releases only then. */
  readonly releasesArtifacts: boolean;
  /** Runs steps in containers of their images: a resource type that is an image needs it. */
  readonly runsContainers: boolean;
  /** Runs a host type's scripts on the worker's host; kubernetes has no host for them and runs them in a pod of the type's image. */
  readonly runsHostScripts: boolean;
  /**
   * Finds the task this run of the step started (idempotent by build, run, step and attempt key)
   * or starts it. `config` is resolved by the step layer; inputs are mapped by it too.
   */
  findOrStartTask(task: ResolvedTask, io: StepIo): Promise<TaskHandle>;
  /**
   * One file of an artifact, as a stream of its bytes: readArtifactText reads it, no further than
   * its limit. Throws StepErrored (or any Error, which the step layer words) when it cannot.
   */
  readArtifactFile(file: ArtifactFile, what: string): Promise<Readable>;
  /** No step can read these artifacts any more. */
  releaseArtifacts(refs: ArtifactRef[]): Promise<void>;
  /** The build is over: `-o` exports handed to the CLI, build-finished announced, the build's objects removed. */
  finishBuild(req: FinishBuildRequest): Promise<void>;
  readonly services: ServiceRuntime;
}

/** A task step as the step layer hands it to a runtime: the request, its resolved config and its mapped inputs. */
export interface ResolvedTask {
  req: RunTaskRequest;
  /**
   * resolves the config (file, vars, ((.svc))) and maps inputs: called only when the task is not
   * running yet. `secrets`: the resolved credential and secret load_var values in it, which a
   * runtime keeps out of objects others may read (kubernetes: pod specs).
   */
  resolve(): Promise<{ config: TaskConfig; inputs: MappedInput[]; secrets?: string[] }>;
  /** the activity's first attempt: its task is almost surely not started, so a runtime may create it first and attach only when that finds it exists */
  firstAttempt?: boolean;
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
