// What the CLI and the pipeline workflow say to each other: workflow ids, update and query
// names, and the shapes that cross that boundary.
import { z } from 'zod';
import type { ResourceVersion } from './compiled';
import type { PipelineConfig } from './pipeline';

export const PIPELINE_WORKFLOW = 'pipeline';

export const PIPELINE_UPDATES = {
  setConfig: 'setConfig',
  setParent: 'setParent',
  trigger: 'triggerJob',
  rerun: 'rerunBuild',
  schedule: 'scheduleJob',
  check: 'checkResource',
  pause: 'pause',
  pin: 'pin',
  toggleVersion: 'toggleVersion',
  destroy: 'destroy',
  rename: 'rename',
} as const;

export const PIPELINE_QUERIES = { view: 'pipeline' } as const;

/** Signals a job build sends its pipeline: `output` is Concourse's SaveOutput, a version a put made. */
export const PIPELINE_SIGNALS = { output: 'buildOutput' } as const;

/** `pipeline` is the pipeline's key (schemas/instance-vars.ts pipelineKey): its name, or NAME+... for an instance. */
export const pipelineWorkflowId = (pipeline: string) => `pipeline-${pipeline}`;

/** A pipeline's key from its workflow's id (the workflow code has no SHA-256 to compute it again). */
export const pipelineKeyOfWorkflowId = (workflowId: string) => workflowId.replace(/^pipeline-/, '');

/** The pipeline name of a key: the name credential managers look vars up under, shared by a pipeline's instances (Concourse's). */
export const pipelineNameOf = (key: string) => key.split('+')[0];

/** A version as `fly resource-versions` prints it: `k:v,k2:v2`. */
export const formatVersion = (version: Record<string, string>) =>
  Object.entries(version)
    .map(([k, v]) => `${k}:${v}`)
    .join(',');

/** A job build's workflow id: keys and names hold no `:` (NAME_PATTERN), so distinct builds never share one. */
export const jobBuildId = (pipeline: string, job: string, number: number) => `build-${pipeline}:${job}:${number}`;

/** A job build's workflow id: under the job's name when it started, also after an `old_name:` rename. */
export const buildWorkflowId = (pipeline: string, b: { job: string; number: number; workflowJob?: string; workflowPipeline?: string }) =>
  jobBuildId(b.workflowPipeline ?? pipeline, b.workflowJob ?? b.job, b.number);

export interface PipelineInput {
  config: PipelineConfig;
  state: SchedulerState;
  /** epoch ms of each resource's last check */
  lastChecked: Record<string, number>;
  /** the last check error of each resource (and start errors of jobs) */
  checkErrors: Record<string, string>;
  /** the job build that set the config last; absent when a person did */
  setBy?: SetBy;
}

/** The pin update: pins `version` and/or sets the pin's `comment`; neither unpins (and drops the comment). */
export interface PinRequest {
  resource: string;
  version?: ResourceVersion;
  comment?: string;
}

/**
 * disable-/enable-resource-version: the newest version of `resource` with every key of
 * `version` is disabled or enabled again; the update answers with that version in full.
 */
export const VersionToggleSchema = z.strictObject({
  resource: z.string().min(1),
  version: z.record(z.string(), z.string()).refine((v) => Object.keys(v).length > 0, 'a version needs at least one key'),
  enabled: z.boolean(),
});
export type VersionToggle = z.infer<typeof VersionToggleSchema>;

export interface PipelineView extends PipelineInput {
  /** per job: the versions its next build would get, or why it has none */
  next: Record<string, string>;
  /** per job whose inputs resolve: those versions by input name (`execute -j`); absent from workers before it */
  nextInputs?: Record<string, Record<string, InputVersion>>;
}

export interface VersionRecord {
  /** check order within the resource: 1, 2, ... (never reused, so a pruned list keeps its order) */
  seq: number;
  version: ResourceVersion;
}

export type JobBuildStatus = 'pending' | 'started' | 'succeeded' | 'failed' | 'errored' | 'aborted';

export interface InputVersion {
  resource: string;
  seq: number;
  version: ResourceVersion;
}

/** A version a build's put made, counted as its output (Concourse's build outputs). */
export interface BuildOutput {
  resource: string;
  version: ResourceVersion;
}

/** Which build of which job a build is: from its search attributes, handed to its fan-out parts. */
export interface JobBuildRef {
  pipeline: string;
  job: string;
  number: number;
  /** when the build's workflow started (epoch ms): orders builds of different jobs, as Concourse's global build ids do */
  startedAt: number;
}

/**
 * The job build whose set_pipeline step set a pipeline last (Concourse's parent_job_id and
 * parent_build_id); absent when a person set it (`causeway set-pipeline`, as fly clears them).
 */
export type SetBy = JobBuildRef;

/** The failure type of a set refused because a newer build set the pipeline (Concourse's ErrSetByNewerBuild). */
export const SET_BY_NEWER_BUILD = 'SetByNewerBuild';

/** The `output` signal: a version a put of build `job` #`number` made, sent when the put succeeds. */
export interface SavedOutput extends BuildOutput {
  job: string;
  number: number;
}

/** How a job build ended, and the versions its puts made (read from a succeeded build's result). */
export interface BuildOutcome {
  status: 'succeeded' | 'failed' | 'errored' | 'aborted';
  outputs: BuildOutput[];
}

export interface JobBuild {
  job: string;
  number: number;
  status: JobBuildStatus;
  /** trigger-job made it (it starts even when no trigger input has a new version) */
  manual: boolean;
  /**
   * rerun-build made it: the number of the build it reruns (of the first build, for a rerun of
   * a rerun, as Concourse's rerun_of), whose inputs it has from the start
   */
  rerunOf?: number;
  /** the job's name in the build's workflow id (build-P:J:N), when the job has been renamed (`old_name:`) since */
  workflowJob?: string;
  /** the pipeline's key in the build's workflow id, when the pipeline has been renamed (rename-pipeline) since */
  workflowPipeline?: string;
  /** by input (get) name; empty while pending */
  inputs: Record<string, InputVersion>;
  /** versions its puts made, as `passed:` counts them (Concourse's successful_build_outputs: inputs and outputs) */
  outputs?: InputVersion[];
  /**
   * a trigger-job build: the resources it has yet to check before its inputs are resolved
   * (Concourse's ResourcesChecked: every input without `passed` whose resource is not pinned)
   */
  checks?: string[];
}

export interface SchedulerState {
  versions: Record<string, VersionRecord[]>;
  /** pending and running builds, and the newest finished ones of each job (see KEEP_FINISHED) */
  builds: JobBuild[];
  /** per job: the last build number given */
  counters: Record<string, number>;
  /** pin-resource pins, by resource */
  pins: Record<string, ResourceVersion>;
  /**
   * pin-resource -c comments, by resource: on its pin-resource pin, else on its config pin (which
   * set-pipeline clears, as Concourse's); absent from pipelines started before them
   */
  pinComments?: Record<string, string>;
  paused: boolean;
  pausedJobs: string[];
  /** per resource: the last check order given, kept when its versions are dropped (its source changed) so orders never repeat */
  lastSeq?: Record<string, number>;
  /**
   * disable-resource-version: per resource, the check orders (`seq`) of its disabled versions,
   * which no build gets but a pin's (Concourse's resource_disabled_versions); absent from
   * pipelines started before it
   */
  disabled?: Record<string, number[]>;
  /**
   * Renames (`old_name:`, rename-pipeline): each former name of a job or resource to its name
   * now, and the pipeline's former keys, for the builds and signals that carry a former name
   * (absent until a rename)
   */
  renamed?: {
    jobs: Record<string, string>;
    resources: Record<string, string>;
    /** the keys the pipeline had before rename-pipeline, oldest first: its builds from then carry them */
    pipelines?: string[];
  };
}

/** Whether a resource's version (by its check order) is disabled (disable-resource-version). */
export const isDisabled = (state: SchedulerState, resource: string, seq: number) => state.disabled?.[resource]?.includes(seq) ?? false;

const version = z.record(z.string(), z.string());

/** The shape of a compiled pipeline as it crosses into the workflow (each job's plan is checked again by its build). */
export const PipelineConfigSchema = z.object({
  name: z.string().min(1),
  instanceVars: z.record(z.string(), z.unknown()).optional(),
  ref: z.string().optional(),
  text: z.string(),
  resources: z.array(
    z.object({
      name: z.string(),
      ref: z.object({ name: z.string() }).passthrough(),
      checkEveryMs: z.number().min(0),
      checkTimeoutMs: z.number().positive().optional(),
      pinned: version.optional(),
    }),
  ),
  jobs: z.array(
    z.object({
      name: z.string(),
      plan: z.object({ name: z.string(), plan: z.object({ kind: z.literal('do') }).passthrough() }).passthrough(),
      inputs: z.array(
        z.object({
          name: z.string(),
          resource: z.string(),
          trigger: z.boolean(),
          passed: z.array(z.string()),
          version: z.union([z.literal('latest'), z.literal('every'), version]),
        }),
      ),
      maxInFlight: z.number().int().min(1).optional(),
      serialGroups: z.array(z.string()),
      disableManualTrigger: z.boolean(),
      disableReruns: z.literal(true).optional(),
    }),
  ),
});

/**
 * What an ended pipeline's workflow returns: enough to set it again, and to list it once
 * archived, without a worker replaying it (set-pipeline and `pipelines --include-archived`
 * read it from the closed workflow).
 */
export const PipelineEndSchema = z.object({
  counters: z.record(z.string(), z.number()),
  /** rename-pipeline: the key it goes on under (the pipelines it set follow it there) */
  renamedTo: z.string().optional(),
  /** why it was archived: archive-pipeline, or the pipeline that set it no longer does */
  archived: z.string().optional(),
  /** an archived pipeline's name and instance vars, which its key only hashes; absent from those archived before them */
  name: z.string().optional(),
  instanceVars: z.record(z.string(), z.unknown()).optional(),
});
export type PipelineEnd = z.infer<typeof PipelineEndSchema>;

/** The destroy update's argument, from archive-pipeline: the pipeline ends archived, for that reason. */
export const DestroyRequestSchema = z.strictObject({ archived: z.string().min(1) });
export type DestroyRequest = z.infer<typeof DestroyRequestSchema>;

/**
 * Why a pipeline set by a job build (`setBy`) is abandoned, as Concourse's
 * ArchiveAbandonedPipelines (atc/db/pipeline_lifecycle.go) decides it, given its parent's
 * view: the job left the parent's config, or the job's latest completed build succeeded and
 * came after the one that set it (a build that sets it again becomes its setter first).
 * Undefined when it is not.
 */
export function abandonedBy(setBy: SetBy, parent: PipelineView): string | undefined {
  const job = parent.state.renamed?.jobs[setBy.job] ?? setBy.job;
  if (!parent.config.jobs.some((j) => j.name === job)) return `job ${job} left pipeline ${parent.config.ref ?? parent.config.name}`;
  const done = parent.state.builds.filter((b) => b.job === job && !['pending', 'started'].includes(b.status));
  const last = done.reduce<JobBuild | undefined>((a, b) => (!a || b.number > a.number ? b : a), undefined);
  if (last?.status === 'succeeded' && last.number > setBy.number)
    return `build #${last.number} of ${parent.config.ref ?? parent.config.name}/${job} succeeded without setting it`;
  return undefined;
}

export function emptyPipelineInput(config: PipelineConfig): PipelineInput {
  return {
    config,
    state: { versions: {}, builds: [], counters: {}, pins: {}, paused: false, pausedJobs: [] },
    lastChecked: {},
    checkErrors: {},
  };
}
