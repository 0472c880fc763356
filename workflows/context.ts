import type { ActivityInterfaceFor } from '@temporalio/workflow';
import type { Step, VarSourceConfig } from '../schemas/compiled';
import type { ArtifactRef, Artifacts, BuildActivities } from '../activities/types';
import type { ServiceAddress } from '../common/services';
import type { JobBuildRef } from '../schemas/pipeline-api';
import type { ArtifactReleaser } from './release';
import type { StatusTracker } from './status';
import type { WorkerWait } from './waiting';
import type { Patches } from './patches';

/** A step that ended `errored` (Concourse: config, timeout, infrastructure), as opposed to a task that failed. */
export class StepError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StepError';
  }
}

/** Artifacts and local vars visible to a step. `across` iterations get a child scope so what they set stays in them. */
export class Scope {
  private readonly artifacts = new Map<string, ArtifactRef>();
  private readonly locals = new Map<string, unknown>();

  constructor(private readonly parent?: Scope) {}

  child(): Scope {
    return new Scope(this);
  }

  setArtifact(name: string, ref: ArtifactRef): void {
    this.artifacts.set(name, ref);
  }

  setLocal(name: string, value: unknown, opts: { reveal?: boolean } = {}): void {
    this.locals.set(name, value);
    if (opts.reveal) this.revealed.add(name);
    else this.revealed.delete(name);
  }

  /** Names bound here with `reveal` (an across var): never redacted, though a load_var of that name is. */
  private readonly revealed = new Set<string>();

  /** Whether the binding of `name` that a step here sees was set with `reveal`. */
  isRevealed(name: string): boolean {
    if (this.locals.has(name)) return this.revealed.has(name);
    return this.parent?.isRevealed(name) ?? false;
  }

  allArtifacts(): Artifacts {
    return { ...(this.parent?.allArtifacts() ?? {}), ...Object.fromEntries(this.artifacts) };
  }

  allLocals(): Record<string, unknown> {
    return { ...(this.parent?.allLocals() ?? {}), ...Object.fromEntries(this.locals) };
  }

  /** What was set in this scope itself: a part's results, handed back to the scope it ran for. */
  own(): { artifacts: Artifacts; locals: Record<string, unknown> } {
    return { artifacts: Object.fromEntries(this.artifacts), locals: Object.fromEntries(this.locals) };
  }
}

export interface BuildContext {
  buildId: string;
  runId: string;
  plan: string;
  workerTags: string[];
  /** the build worker's own task queue, where every step activity runs */
  taskQueue: string;
  /** step activities, bound to the build's worker */
  acts: ActivityInterfaceFor<
    Pick<BuildActivities, 'runTask' | 'loadVar' | 'setPipeline' | 'startService' | 'probeService' | 'superviseService' | 'stopService'>
  >;
  /** frees producers' artifacts once nothing can read them; absent when the runtime keeps them anyway */
  releaser?: Pick<ArtifactReleaser, 'produced' | 'stepEnded'>;
  /** services given an address so far in this build: the next one's index (see serviceHost) */
  servicesAllocated: number;
  status: StatusTracker;
  /** failed tasks reported by child workflows (parts), for the build's message */
  failedInParts: string[];
  /**
   * Runs a child step with its modifiers (step.ts's runStep). Composite steps recurse through
   * here, as Concourse's run state does, so no step kind's file imports step.ts (no cycle).
   */
  run(step: Step, frame: Frame): Promise<boolean>;
  /** var sources and secret locals for step activities; absent when the plan has neither */
  credentials?: BuildCredentials;
  /** the pipeline job build this is (its search attributes); absent for a one-off build */
  jobBuild?: JobBuildRef;
  /** says in the status tree when a task's activity waits for a worker; absent in builds older than it */
  workerWait?: WorkerWait;
  /** true once the build itself was cancelled (abort), as opposed to a scope cancelled by a timeout or fail_fast */
  aborted(): boolean;
  /** the patches this build's (or part's) workflow takes, decided at its start */
  patched: Patches;
  /** a step without a modifier skips that modifier's wrapper (passThrough); false in builds older than the patch */
  leanWrappers?: boolean;
}

/**
 * A modifier's wrapper for a step without the modifier: the step itself. Each async hop cost the
 * workflow thread promises, and the SDK's promise hook records a source-mapped stack for each
 * (bench:step-overhead). Builds older than the `lean-step-wrappers` patch keep the hop: replaying
 * them must keep those promise turns, which order the commands of steps running in parallel.
 */
export function passThrough(ctx: BuildContext, run: () => Promise<boolean>): Promise<boolean> {
  return ctx.leanWrappers ? run() : asyncHop(run);
}

/** What an async wrapper's early `return run()` was, turn for turn (no `await`: that is one turn fewer). */
async function asyncHop(run: () => Promise<boolean>): Promise<boolean> {
  return run();
}

/** The build's credential context, handed to its step activities (and to fan-out parts); never a value of a credential manager. */
export interface BuildCredentials {
  varSources?: VarSourceConfig[];
  /** names of load_vars without `reveal: true`: their values are redacted from task logs */
  secretLocals?: string[];
  /** the job build's pipeline key (its name, or an instance's NAME+...): cache paths; lookup paths take its name (credentialsPipeline); absent: a one-off build */
  pipeline?: string;
}

/** Where a step runs: its scope, its parent in the status tree, and the attempt numbers of enclosing `attempts`. */
export interface Frame {
  scope: Scope;
  parent?: string;
  runKey: string;
  /** services of the enclosing steps, by name; a step's own services shadow outer ones */
  services?: Record<string, ServiceAddress>;
  /** the `timeout`s of enclosing steps: a cancellation under an expired one is a timeout, not an abort */
  deadlines?: Deadline[];
}

export interface Deadline {
  expired: boolean;
  /** when it expires (workflow time, epoch ms): a step's activity, and a part (child workflow), tell a timeout from an abort by it */
  at: number;
}

/** When the earliest enclosing `timeout` expires (epoch ms), for the step's activity. */
export function deadlineOf(frame: Frame): number | undefined {
  return frame.deadlines?.length ? Math.min(...frame.deadlines.map((d) => d.at)) : undefined;
}
