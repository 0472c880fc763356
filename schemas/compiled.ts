// The compiled plan: what `causeway run` submits and the `build` workflow walks.
// Plain data (no zod, no node imports) so workflow code can import it.
// Static ((vars)) are already interpolated; local vars ((.:name)) remain as text
// and are interpolated at run time, when `load_var` and `across` have set them.

export interface ImageResource {
  type: string;
  source: Record<string, unknown>;
  params?: Record<string, unknown>;
  version?: Record<string, string>;
}

export interface TaskInput {
  name: string;
  path?: string;
  optional?: boolean;
}

export interface TaskOutput {
  name: string;
  path?: string;
}

export interface ContainerLimits {
  cpu?: number;
  /** bytes */
  memory?: number;
}

/** A Concourse task config (the contents of a task file or `config:`). */
export interface TaskConfig {
  platform?: string;
  image_resource?: ImageResource;
  rootfs_uri?: string;
  inputs: TaskInput[];
  outputs: TaskOutput[];
  caches: { path: string }[];
  /** env vars; non-string values are JSON-encoded as Concourse does */
  params: Record<string, string>;
  run: { path: string; args: string[]; dir?: string; user?: string };
  container_limits?: ContainerLimits;
}

export interface ServicePort {
  /** `default` when a service lists a single port without a name */
  name: string;
  number: number;
}

/** A command run in the service's network: the startup probe. */
export interface ServiceProbe {
  run: { path: string; args: string[] };
  /** failed probes in a row that make the service fail to start */
  failureThreshold: number;
  periodSeconds: number;
  timeoutSeconds: number;
}

/** What a service runs: a task config's shape plus ports and a startup probe. */
export interface ServiceConfig {
  image_resource?: ImageResource;
  inputs: TaskInput[];
  params: Record<string, string>;
  run: { path: string; args: string[]; dir?: string; user?: string };
  ports: ServicePort[];
  startup_probe?: ServiceProbe;
  container_limits?: ContainerLimits;
}

/** One entry of a step's `services:`; it lives while the step (every attempt of it) runs. */
export interface ServiceSpec {
  name: string;
  config?: ServiceConfig;
  /** service config file "<artifact>/<path>", loaded at run time when `config` is absent */
  file?: string;
  image?: string;
  params: Record<string, string>;
  inputMapping: Record<string, string>;
  privileged?: boolean;
  /** over the config's container_limits, as a task step's */
  containerLimits?: ContainerLimits;
  /** SIGTERM → SIGKILL at teardown */
  gracePeriodMs: number;
}

export interface Hooks {
  on_success?: Step;
  on_failure?: Step;
  on_abort?: Step;
  on_error?: Step;
  ensure?: Step;
}

export interface AcrossVar {
  var: string;
  /** a list, or a local-var reference like "((.:list))" resolved at run time */
  values: unknown[] | string;
  /** iterations of this var run at once; "all" = every one */
  maxInFlight: number | 'all';
}

export interface Across {
  vars: AcrossVar[];
  failFast: boolean;
}

/** Modifiers any step may carry. Wrapping order, outermost first, as Concourse:
 *  hooks > across > services > attempts > timeout (per attempt) > the step itself. */
export interface StepCommon {
  /** stable id from the step's position: "plan.2.in_parallel.0" */
  id: string;
  /** 1-based line of the step in its YAML file, for messages */
  line?: number;
  timeoutMs?: number;
  attempts?: number;
  tags?: string[];
  hooks?: Hooks;
  across?: Across;
  /** only on task, do and in_parallel steps; ((.svc:NAME.field)) refs stay as text until run time */
  services?: ServiceSpec[];
}

export interface TaskStep extends StepCommon {
  kind: 'task';
  task: string;
  config?: TaskConfig;
  /** task file path "<artifact>/<path>", loaded at run time when `config` is absent */
  file?: string;
  params: Record<string, string>;
  vars: Record<string, unknown>;
  inputMapping: Record<string, string>;
  outputMapping: Record<string, string>;
  image?: string;
  privileged: boolean;
  containerLimits?: ContainerLimits;
}

export interface DoStep extends StepCommon {
  kind: 'do';
  steps: Step[];
}

export interface InParallelStep extends StepCommon {
  kind: 'in_parallel';
  steps: Step[];
  limit?: number;
  failFast: boolean;
}

export interface TryStep extends StepCommon {
  kind: 'try';
  step: Step;
}

export interface LoadVarStep extends StepCommon {
  kind: 'load_var';
  var: string;
  /** "<artifact>/<path>" */
  file: string;
  format?: 'json' | 'yaml' | 'yml' | 'trim' | 'raw';
  reveal: boolean;
}

/**
 * Where a resource type's /opt/resource/check|in|out are: a directory of host executables
 * (a base type shipped with Causeway, or a resource_types entry of `type: directory`), or an
 * image (a Concourse resource type image, for runtimes with containers).
 */
export type ResourceTypeRef =
  // base: one of the base types shipped under resources/ (not a `type: directory` entry)
  | { kind: 'host'; name: string; dir: string; base?: boolean }
  // privileged: its containers run privileged (Concourse's resource_types `privileged`)
  | { kind: 'image'; name: string; type: string; source: Record<string, unknown>; privileged?: boolean }
  // Neither a base type shipped here nor declared: Concourse accepts it (workers bring base
  // types, like testflight's `mock`), so only a step that runs it errors.
  | { kind: 'unknown'; name: string };

/** A pipeline's `resources:` entry, with its vars interpolated and its type resolved. */
export interface ResourceRef {
  name: string;
  type: ResourceTypeRef;
  /** credential refs stay as text; the check, get or put activity resolves them */
  source: Record<string, unknown>;
  /** the credential refs in its source and its type's source, where the file has them; absent when none */
  deferredVars?: { ref: string; at: string }[];
}

/** A resource version: Concourse's map of strings, e.g. {ref: "abc123"}. */
export type ResourceVersion = Record<string, string>;

export interface GetStep extends StepCommon {
  kind: 'get';
  /** the artifact it makes (`get:`) */
  name: string;
  resource: ResourceRef;
  /** latest, every (both: the newest in a one-off build), or a pinned version */
  version: 'latest' | 'every' | ResourceVersion;
  params: Record<string, unknown>;
  /** meaningful only in pipelines: kept so a job runs unchanged */
  trigger: boolean;
  passed: string[];
}

export interface PutStep extends StepCommon {
  kind: 'put';
  name: string;
  resource: ResourceRef;
  /** the artifacts `out` sees: all in scope, those its params name (detect), or a list */
  inputs: 'all' | 'detect' | string[];
  params: Record<string, unknown>;
  getParams: Record<string, unknown>;
  /** skip the implicit get of the version the put made */
  noGet: boolean;
}

/** `set_pipeline`: sets a pipeline from a file of an artifact, as `causeway set-pipeline` does. */
export interface SetPipelineStep extends StepCommon {
  kind: 'set_pipeline';
  /** the pipeline to set; `self` is the pipeline whose job runs the step */
  pipeline: string;
  /** the pipeline file "<artifact>/<path>" */
  file: string;
  /** ((vars)) for the file; they win over var_files */
  vars: Record<string, unknown>;
  /** YAML files of ((vars)) "<artifact>/<path>"; an earlier file wins over a later one, as Concourse's */
  varFiles: string[];
  /** Concourse's instance_vars: the pipeline set is the instance NAME/k:v,...; they are vars of its file too, winning over the others */
  instanceVars?: Record<string, unknown>;
  /** Concourse's target team: here only the build's own (checked when the step runs, a ref resolved first) */
  team?: string;
}

export type Step = TaskStep | DoStep | InParallelStep | TryStep | LoadVarStep | GetStep | PutStep | SetPipelineStep;
export type StepKind = Step['kind'];

export interface CompiledPlan {
  /** job name */
  name: string;
  /** the plan file it came from, for messages */
  source: string;
  /** the job's `plan:`, run as a `do` with id "plan" */
  plan: DoStep;
  /** the file's `var_sources:` (credential managers), looked up by the build's worker */
  varSources?: VarSourceConfig[];
  /** credential refs left in the plan for the worker, checked before the first step */
  deferredVars?: { ref: string; at: string }[];
}

/** A `var_sources:` entry (schemas/var-sources.ts validates it); its config holds no secret the plan did not. */
export interface VarSourceConfig {
  name: string;
  type: 'dummy' | 'idtoken' | 'kubernetes' | 'vault';
  config: Record<string, unknown>;
  /** idtoken, in a pipeline: the job whose plan holds it (absent in the pipeline's own, for checks), a claim of its tokens */
  job?: string;
  /** idtoken, in an instance of a pipeline: its instance vars, a claim of its tokens */
  instanceVars?: Record<string, unknown>;
}

/** The `build` workflow's single argument (docs/client.md; checked by schemas/build-input.ts). */
export interface BuildInput {
  plan: CompiledPlan;
  /** artifact names the CLI uploaded (`-i name=dir`) */
  uploads: string[];
  /** artifact names the CLI will download when the build ends (`-o name=dir`) */
  downloads: string[];
}
