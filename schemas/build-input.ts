// The `build` workflow's contract with any Temporal client: its input (a compiled plan, not
// YAML) and its result. The workflow parses its input with BuildInputSchema before anything
// else, so a client in any language gets one non-retryable failure naming what is wrong
// instead of a wedged workflow task. docs/schemas/build-input.v1.json and build-result.v1.json
// are generated from these (`causeway compile --schema input|result`), and
// test/unit/client-contract.test.ts fails when they drift.
//
// The TypeScript interfaces in compiled.ts stay the source the compiler and the workflow code
// use; the type checks at the end of this file fail the build when the two disagree, so a new
// step kind or field must be added here too (and the schema version raised).
import { z } from 'zod';
import type {
  Across,
  BuildInput,
  CompiledPlan,
  DoStep,
  GetStep,
  Hooks,
  InParallelStep,
  LoadVarStep,
  PutStep,
  SetPipelineStep,
  Step,
  TaskConfig,
  TaskStep,
  TryStep,
} from './compiled';
import { BuildStatus, ServiceState, StepState } from './messages';
import {
  acrossProblem,
  artifactFileProblem,
  attemptsProblem,
  envNameProblem,
  MAX_NAME_BYTES,
  nameProblem,
  nulProblem,
  relativePathProblem,
} from './safe-values';

/** Raised when the input's shape changes incompatibly; it is the JSON Schemas' `$id` suffix. */
export const BUILD_INPUT_VERSION = 1;

const StringMap = z.record(z.string(), z.string());
const Run = z.strictObject({ path: z.string().min(1), args: z.array(z.string()), dir: z.string().optional(), user: z.string().optional() });
const ImageResource = z
  .strictObject({
    type: z.string(),
    source: z.record(z.string(), z.unknown()),
    params: z.record(z.string(), z.unknown()).optional(),
    version: StringMap.optional(),
  })
  .meta({ id: 'ImageResource' });
const TaskInput = z.strictObject({ name: z.string().min(1), path: z.string().optional(), optional: z.boolean().optional() });
const TaskOutput = z.strictObject({ name: z.string().min(1), path: z.string().optional() });
const ContainerLimits = z.strictObject({
  cpu: z.number().int().nonnegative().optional(),
  memory: z.number().int().nonnegative().meta({ description: 'bytes' }).optional(),
});

const TaskConfigSchema = z
  .strictObject({
    platform: z.string().optional(),
    image_resource: ImageResource.optional(),
    rootfs_uri: z.string().optional(),
    inputs: z.array(TaskInput).default([]),
    outputs: z.array(TaskOutput).default([]),
    caches: z.array(z.strictObject({ path: z.string() })).default([]),
    params: StringMap.default({}).meta({ description: 'env vars, already strings' }),
    run: Run,
    container_limits: ContainerLimits.optional(),
  })
  .meta({ id: 'TaskConfig' });

const ServiceConfig = z
  .strictObject({
    image_resource: ImageResource.optional(),
    inputs: z.array(TaskInput),
    params: StringMap,
    run: Run,
    ports: z.array(z.strictObject({ name: z.string(), number: z.number().int().min(1).max(65535) })),
    container_limits: ContainerLimits.optional(),
    startup_probe: z
      .strictObject({
        run: z.strictObject({ path: z.string().min(1), args: z.array(z.string()) }),
        failureThreshold: z.number().int().positive(),
        periodSeconds: z.number().positive(),
        timeoutSeconds: z.number().positive(),
      })
      .optional(),
  })
  .meta({ id: 'ServiceConfig' });

const ServiceSpec = z
  .strictObject({
    name: z.string().min(1),
    config: ServiceConfig.optional(),
    file: z.string().optional().meta({ description: 'service config file "<artifact>/<path>", loaded at run time when config is absent' }),
    image: z.string().optional(),
    params: StringMap,
    inputMapping: StringMap,
    privileged: z.boolean().optional(),
    containerLimits: ContainerLimits.optional(),
    gracePeriodMs: z.number().int().nonnegative(),
  })
  .meta({ id: 'ServiceSpec' });

const AcrossSchema = z
  .strictObject({
    vars: z.array(
      z.strictObject({
        var: z.string().min(1),
        values: z.union([z.array(z.unknown()), z.string()]).meta({ description: 'a list, or a local-var reference "((.:name))"' }),
        maxInFlight: z.union([z.number().int().positive(), z.literal('all')]),
      }),
    ),
    failFast: z.boolean(),
  })
  .meta({ id: 'Across' });

// Getters make the recursion (hooks and composite steps hold steps) lazy; z.toJSONSchema
// turns each recursive schema into a $defs entry.
const HooksSchema: z.ZodType<Hooks> = z
  .strictObject({
    get on_success(): z.ZodOptional<z.ZodType<Step>> {
      return StepSchema.optional();
    },
    get on_failure(): z.ZodOptional<z.ZodType<Step>> {
      return StepSchema.optional();
    },
    get on_abort(): z.ZodOptional<z.ZodType<Step>> {
      return StepSchema.optional();
    },
    get on_error(): z.ZodOptional<z.ZodType<Step>> {
      return StepSchema.optional();
    },
    get ensure(): z.ZodOptional<z.ZodType<Step>> {
      return StepSchema.optional();
    },
  })
  .meta({ id: 'Hooks' });

const common = {
  id: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/)
    .meta({ description: 'stable id from the step position, e.g. "plan.2.in_parallel.0"' }),
  line: z.number().int().optional(),
  // The longest Go duration, as the compiler reads `timeout`.
  timeoutMs: z.number().int().positive().max(9_223_372_036_854).optional(),
  attempts: z.number().int().positive().optional(),
  tags: z.array(z.string()).optional(),
  get hooks(): z.ZodOptional<z.ZodType<Hooks>> {
    return HooksSchema.optional();
  },
  across: AcrossSchema.optional(),
  services: z.array(ServiceSpec).optional(),
};

const TaskStepSchema = z
  .strictObject({
    ...common,
    kind: z.literal('task'),
    task: z.string().min(1),
    config: TaskConfigSchema.optional(),
    file: z.string().optional().meta({ description: 'task file "<artifact>/<path>", loaded at run time when config is absent' }),
    params: StringMap.default({}),
    vars: z.record(z.string(), z.unknown()).default({}),
    inputMapping: StringMap.default({}),
    outputMapping: StringMap.default({}),
    image: z.string().optional(),
    privileged: z.boolean().default(false),
    containerLimits: ContainerLimits.optional(),
  })
  .meta({ id: 'TaskStep' });

const DoStepSchema = z
  .strictObject({
    ...common,
    kind: z.literal('do'),
    get steps(): z.ZodArray<z.ZodType<Step>> {
      return z.array(StepSchema);
    },
  })
  .meta({ id: 'DoStep' });

const InParallelStepSchema = z
  .strictObject({
    ...common,
    kind: z.literal('in_parallel'),
    get steps(): z.ZodArray<z.ZodType<Step>> {
      return z.array(StepSchema);
    },
    limit: z.number().int().positive().optional(),
    failFast: z.boolean(),
  })
  .meta({ id: 'InParallelStep' });

const TryStepSchema = z
  .strictObject({
    ...common,
    kind: z.literal('try'),
    get step(): z.ZodType<Step> {
      return StepSchema;
    },
  })
  .meta({ id: 'TryStep' });

const LoadVarStepSchema = z
  .strictObject({
    ...common,
    kind: z.literal('load_var'),
    var: z.string().min(1),
    file: z.string().min(1),
    format: z.enum(['json', 'yaml', 'yml', 'trim', 'raw']).optional(),
    reveal: z.boolean(),
  })
  .meta({ id: 'LoadVarStep' });

const ResourceVersionSchema = StringMap.meta({ id: 'ResourceVersion', description: 'a resource version, e.g. {"ref": "abc123"}' });

const ResourceRefSchema = z
  .strictObject({
    name: z.string().min(1),
    type: z.discriminatedUnion('kind', [
      z.strictObject({
        kind: z.literal('host'),
        name: z.string().min(1),
        dir: z.string().min(1).meta({ description: 'directory holding check, in and out' }),
        base: z.boolean().optional().meta({ description: 'a base type shipped with Causeway (resources/), not a directory type' }),
      }),
      z.strictObject({
        kind: z.literal('image'),
        name: z.string().min(1),
        type: z.string().min(1),
        source: z.record(z.string(), z.unknown()),
        privileged: z.boolean().optional().meta({ description: 'its check, in and out run in privileged containers' }),
      }),
      z.strictObject({ kind: z.literal('unknown'), name: z.string().min(1) }),
    ]),
    source: z.record(z.string(), z.unknown()).meta({ description: 'credential refs stay as text: the step activity resolves them' }),
    deferredVars: z
      .array(z.strictObject({ ref: z.string().min(1), at: z.string() }))
      .optional()
      .meta({ description: "credential refs in its source and its type's source, and where the plan uses each" }),
  })
  .meta({ id: 'ResourceRef' });

const GetStepSchema = z
  .strictObject({
    ...common,
    kind: z.literal('get'),
    name: z.string().min(1).meta({ description: 'the artifact it makes' }),
    resource: ResourceRefSchema,
    version: z.union([z.literal('latest'), z.literal('every'), ResourceVersionSchema]),
    params: z.record(z.string(), z.unknown()),
    trigger: z.boolean(),
    passed: z.array(z.string()),
  })
  .meta({ id: 'GetStep' });

const PutStepSchema = z
  .strictObject({
    ...common,
    kind: z.literal('put'),
    name: z.string().min(1),
    resource: ResourceRefSchema,
    inputs: z.union([z.literal('all'), z.literal('detect'), z.array(z.string())]),
    params: z.record(z.string(), z.unknown()),
    getParams: z.record(z.string(), z.unknown()),
    noGet: z.boolean(),
  })
  .meta({ id: 'PutStep' });

const SetPipelineStepSchema = z
  .strictObject({
    ...common,
    kind: z.literal('set_pipeline'),
    pipeline: z.string().min(1).meta({ description: 'the pipeline to set, or "self"' }),
    file: z.string().min(1).meta({ description: 'the pipeline file "<artifact>/<path>"' }),
    vars: z.record(z.string(), z.unknown()),
    varFiles: z.array(z.string().min(1)).meta({ description: 'YAML files of vars "<artifact>/<path>"; an earlier one wins' }),
    instanceVars: z
      .record(z.string(), z.unknown())
      .optional()
      .meta({ description: 'instance vars: the pipeline set is the instance NAME/k:v,...; also vars of its file, winning' }),
    team: z.string().min(1).optional().meta({ description: "the target team: only the worker's own team is accepted" }),
  })
  .meta({ id: 'SetPipelineStep' });

const StepSchema: z.ZodType<Step> = z
  .discriminatedUnion('kind', [
    TaskStepSchema,
    DoStepSchema,
    InParallelStepSchema,
    TryStepSchema,
    LoadVarStepSchema,
    GetStepSchema,
    PutStepSchema,
    SetPipelineStepSchema,
  ])
  .meta({ id: 'Step' });

const VarSourceSchema = z.strictObject({
  name: z.string().min(1),
  type: z.enum(['dummy', 'idtoken', 'kubernetes', 'vault']),
  config: z.record(z.string(), z.unknown()),
  job: z.string().optional().meta({ description: "idtoken: the job whose plan this is, a claim of the source's tokens" }),
  instanceVars: z
    .record(z.string(), z.unknown())
    .optional()
    .meta({ description: "idtoken: the instance vars of the job's pipeline, a claim of the source's tokens" }),
});

export const CompiledPlanSchema = z.strictObject({
  name: z.string().min(1).meta({ description: 'job name' }),
  source: z.string().meta({ description: 'the plan file it came from, for messages' }),
  plan: DoStepSchema.meta({ description: 'the job\'s plan, run as a `do` with id "plan"' }),
  varSources: z
    .array(VarSourceSchema)
    .optional()
    .meta({ description: "the plan's var_sources (credential managers); the worker validates each config when it looks a var up" }),
  deferredVars: z
    .array(z.strictObject({ ref: z.string().min(1), at: z.string() }))
    .optional()
    .meta({ description: 'credential refs the worker resolves, and where the plan uses each; checked before the first step' }),
});

export const BuildInputSchema = z
  .strictObject({
    plan: CompiledPlanSchema,
    uploads: z
      .array(z.string())
      .default([])
      .meta({ description: 'artifact names the client uploaded to the object store bucket (causeway run -i)' }),
    downloads: z.array(z.string()).default([]).meta({ description: 'artifact names exported when the build ends (causeway run -o)' }),
  })
  .meta({
    title: 'Causeway build input',
    description: 'The single argument of workflow type `build`: a compiled plan, as `causeway compile` prints it.',
  });

const StepKinds = z.enum(['task', 'do', 'in_parallel', 'try', 'load_var', 'get', 'put', 'set_pipeline']);

const StepStatusSchema = z.strictObject({
  id: z.string(),
  parent: z.string().optional(),
  kind: z.union([StepKinds, z.literal('service')]),
  name: z.string(),
  state: StepState,
  service: z.strictObject({ state: ServiceState, address: z.string().optional() }).optional(),
  attempts: z.number().int(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  exitCode: z.number().int().optional(),
  message: z.string().optional(),
  resource: z.strictObject({ name: z.string(), version: StringMap }).optional(),
});

export const BuildSummarySchema = z
  .strictObject({
    buildId: z.string(),
    plan: z.string(),
    status: BuildStatus,
    message: z.string().optional(),
    startedAt: z.string(),
    finishedAt: z.string().optional(),
    steps: z.array(StepStatusSchema),
    parts: z
      .array(
        z.strictObject({
          workflowId: z.string(),
          parent: z.string(),
          from: z.number().int(),
          to: z.number().int(),
          state: StepState,
        }),
      )
      .optional()
      .meta({
        description:
          'child workflows (type buildPart) running slices of big lists: their steps are in their own `status` query or result (docs/decisions.md, "Big fan-out")',
      }),
  })
  .meta({
    title: 'Causeway build summary',
    description:
      'The result of a succeeded build, the `details[0]` of a failed (BuildFailed) or errored (BuildErrored) one, and the answer of the `status` query.',
  });

/** The JSON Schemas a client in any language can check its input and read the result with. */
export function clientJsonSchemas(): { input: object; result: object } {
  const base = 'https://causeway.dev/schemas';
  return {
    input: {
      $id: `${base}/build-input.v${BUILD_INPUT_VERSION}.json`,
      ...z.toJSONSchema(BuildInputSchema, { io: 'input', unrepresentable: 'any' }),
    },
    result: { $id: `${base}/build-result.v${BUILD_INPUT_VERSION}.json`, ...z.toJSONSchema(BuildSummarySchema, { unrepresentable: 'any' }) },
  };
}

/** A workflow input that is not a build input: every problem, each with its JSON path. */
export class BuildInputError extends Error {
  constructor(
    readonly issues: string[],
    what = 'build input (see docs/client.md)',
  ) {
    super(`invalid ${what}: ${issues.join('; ')}`);
    this.name = 'BuildInputError';
  }
}

/** Parses the `build` workflow's argument; throws BuildInputError naming what is wrong. */
export function parseBuildInput(raw: unknown, buildId?: string): BuildInput {
  // The workflow id is the build id: it names the build's directory, leases and processes on a
  // worker, so one that is a path (`../other-build`) would reach another build's.
  const badId = buildId === undefined ? undefined : nameProblem(buildId);
  if (badId) throw new BuildInputError([`workflow id: ${badId} (the workflow id names the build's directory on a worker)`]);
  // Before zod, which recurses into steps: a client's JSON may nest thousands deep.
  const deep = depthProblem(raw);
  if (deep) throw new BuildInputError([deep]);
  const result = BuildInputSchema.safeParse(raw);
  if (!result.success) throw new BuildInputError(result.error.issues.slice(0, 10).map((i) => `${jsonPath(i.path)}: ${i.message}`));
  // What the compiler refuses in a plan file is refused from any client too: these values
  // become directory names, paths, environments and activity names on a worker.
  const problems = inputProblems(result.data);
  if (problems.length > 0) throw new BuildInputError(problems.slice(0, 10));
  return result.data;
}

const ArtifactRefSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('dir'), worker: z.string(), path: z.string() }),
  z.strictObject({ kind: z.literal('pod'), worker: z.string(), pod: z.string(), path: z.string() }),
]);

// Not strict, unlike the steps: a field a later version drops from the envelope must not fail
// the replay of a part started before.
export const PartInputSchema = z.object({
  buildId: z.string(),
  runId: z.string(),
  plan: z.string(),
  taskQueue: z.string().min(1),
  workerTags: z.array(z.string()),
  releasesArtifacts: z.boolean(),
  servicesBase: z.number().int().nonnegative(),
  credentials: z
    .object({
      varSources: z.array(VarSourceSchema).optional(),
      secretLocals: z.array(z.string()).optional(),
      pipeline: z.string().optional(),
    })
    .optional(),
  jobBuild: z.object({ pipeline: z.string(), job: z.string(), number: z.number().int(), startedAt: z.number() }).optional(),
  frame: z.object({
    artifacts: z.record(z.string(), ArtifactRefSchema),
    locals: z.record(z.string(), z.unknown()),
    services: z
      .record(
        z.string(),
        z.object({
          name: z.string(),
          host: z.string(),
          ports: z.record(z.string(), z.number().int()),
          primaryPort: z.string().optional(),
          network: z.string().optional(),
        }),
      )
      .optional(),
    runKey: z.string(),
    parent: z.string().optional(),
    deadlines: z.array(z.number()),
  }),
  list: z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('steps'), parent: z.string(), steps: z.array(StepSchema) }),
    z.object({
      kind: z.literal('across'),
      step: StepSchema,
      depth: z.number().int().nonnegative(),
      bindings: z.array(z.unknown()),
      indices: z.array(z.number().int().nonnegative()),
      values: z.array(z.array(z.unknown())),
      offset: z.number().int().nonnegative(),
    }),
  ]),
  limit: z.number().int().positive(),
  failFast: z.boolean(),
});

export type PartInputData = z.output<typeof PartInputSchema>;

/**
 * Parses a `buildPart` child workflow's argument as parseBuildInput parses a build's: any
 * client can start one, and its ids, names and steps become directories, processes and
 * activities on a worker. Only its build starts a part: `parent` (the workflow that started it)
 * must be the build it names. Throws BuildInputError naming what is wrong.
 */
export function parsePartInput(raw: unknown, parent: string | undefined): PartInputData {
  const fail = (issues: string[]) => new BuildInputError(issues.slice(0, 10), 'buildPart input (a part is started by its build only)');
  const deep = depthProblem(raw);
  if (deep) throw fail([deep]);
  const result = PartInputSchema.safeParse(raw);
  if (!result.success) throw fail(result.error.issues.map((i) => `${jsonPath(i.path)}: ${i.message}`));
  const input = result.data;
  const { problems, add } = problemList();
  if (parent !== input.buildId) add('buildId', `\`${input.buildId}\` is not the build that started this part (${parent ?? 'none did'})`);
  add('buildId', nameProblem(input.buildId));
  add('runId', nameProblem(input.runId));
  add('plan', nameProblem(input.plan));
  add('frame.runKey', nameProblem(input.frame.runKey));
  for (const name of Object.keys(input.frame.artifacts)) add(`frame.artifacts.${name}`, nameProblem(name));
  if (input.frame.parent !== undefined && !STEP_ID.test(input.frame.parent))
    add('frame.parent', `\`${input.frame.parent}\` is not a step id`);
  const visit = stepChecker(add);
  const { list } = input;
  if (list.kind === 'steps') list.steps.forEach((step, i) => visit(step, `list.steps[${i}]`, 1));
  else {
    // The part runs the product of its levels' values, as the compiler counts an across.
    add('list.values', acrossProblem(list.values.reduce((n, v) => n * v.length, 1)));
    visit(list.step, 'list.step', 1);
  }
  if (problems.length > 0) throw fail(problems);
  return input;
}

/**
 * How deeply steps may nest in an input: a compiled plan's never nest deeper than its step ids
 * allow (255 bytes, at least 2 per level). And the JSON as a whole: every walk of it recurses.
 */
export const MAX_INPUT_STEP_DEPTH = 128;
export const MAX_INPUT_DEPTH = 1024;

/** Walks `raw` without recursion; the first place it nests too deeply, or undefined. */
function depthProblem(raw: unknown): string | undefined {
  const shown = (path: string) => {
    const p = path.replace(/^\./, '');
    return p.length > 120 ? `${p.slice(0, 50)}…${p.slice(-50)}` : p;
  };
  const stack: { value: unknown; depth: number; steps: number; path: string }[] = [{ value: raw, depth: 0, steps: 0, path: '' }];
  for (let next = stack.pop(); next; next = stack.pop()) {
    const { value, depth, steps, path } = next;
    if (value === null || typeof value !== 'object') continue;
    if (depth > MAX_INPUT_DEPTH) return `${shown(path)}: the input nests more than ${MAX_INPUT_DEPTH} levels deep`;
    const isStep = typeof (value as { kind?: unknown }).kind === 'string' && typeof (value as { id?: unknown }).id === 'string';
    if (isStep && steps >= MAX_INPUT_STEP_DEPTH)
      return `${shown(path)}: steps nest more than ${MAX_INPUT_STEP_DEPTH} levels deep (a compiled plan's step ids, at most ${MAX_NAME_BYTES} bytes, allow fewer)`;
    const entries = Array.isArray(value)
      ? value.map((v, i) => [`[${i}]`, v] as const)
      : Object.entries(value).map(([k, v]) => [`.${k}`, v] as const);
    for (const [key, child] of entries) stack.push({ value: child, depth: depth + 1, steps: steps + (isStep ? 1 : 0), path: path + key });
  }
  return undefined;
}

// Ids as the compiler makes them (`plan.2.in_parallel.0`): they name directories, activities and containers.
const STEP_ID = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const SERVICE_NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;

type AddProblem = (at: string, problem: string | undefined) => void;

/** Problems collected with their JSON paths. */
function problemList(): { problems: string[]; add: AddProblem } {
  const problems: string[] = [];
  return {
    problems,
    add: (at, problem) => {
      if (problem) problems.push(`${at}: ${problem}`);
    },
  };
}

/** What the compiler would have refused in a parsed input, each with its JSON path. */
export function inputProblems(input: BuildInput): string[] {
  const { problems, add } = problemList();
  add('plan.name', nameProblem(input.plan.name));
  input.uploads.forEach((n, i) => add(`uploads[${i}]`, nameProblem(n)));
  input.downloads.forEach((n, i) => add(`downloads[${i}]`, nameProblem(n)));
  stepChecker(add)(input.plan.plan, 'plan.plan', 1);
  return problems;
}

/**
 * Checks steps (and their hooks and children) as the compiler would have made them: `times` is
 * how many times the enclosing across runs them. Step ids must be unique across every call.
 */
function stepChecker(add: AddProblem): (step: Step, at: string, times: number) => void {
  const ids = new Set<string>();
  const env = (at: string, vars: Record<string, string>) => {
    for (const [name, value] of Object.entries(vars)) add(`${at}.${name}`, envNameProblem(name) ?? nulProblem('its value', value));
  };
  const mapping = (at: string, m: Record<string, string>) => {
    for (const [from, to] of Object.entries(m)) add(`${at}.${from}`, nameProblem(from) ?? nameProblem(to));
  };
  const config = (
    at: string,
    c: Pick<TaskConfig, 'inputs' | 'params' | 'run'> & { outputs?: TaskConfig['outputs']; caches?: TaskConfig['caches'] },
  ) => {
    for (const [key, list] of [
      ['inputs', c.inputs],
      ['outputs', c.outputs ?? []],
    ] as const) {
      list.forEach((item, i) => {
        add(`${at}.${key}[${i}].name`, nameProblem(item.name));
        if (item.path !== undefined) add(`${at}.${key}[${i}].path`, relativePathProblem(item.path));
      });
    }
    (c.caches ?? []).forEach((cache, i) => {
      const escapes = relativePathProblem(cache.path);
      add(
        `${at}.caches[${i}].path`,
        escapes ??
          (cache.path.split('/').every((seg) => seg === '' || seg === '.') ? 'a cache cannot be the whole working directory' : undefined),
      );
    });
    if (c.run.dir !== undefined) add(`${at}.run.dir`, relativePathProblem(c.run.dir));
    add(`${at}.run.path`, nulProblem('`run.path`', c.run.path));
    c.run.args.forEach((arg, i) => add(`${at}.run.args[${i}]`, nulProblem('this argument', arg)));
    env(`${at}.params`, c.params);
  };
  const visit = (step: Step, at: string, times: number) => {
    if (!STEP_ID.test(step.id))
      add(
        `${at}.id`,
        `\`${step.id}\` is not a step id: dot-separated parts of letters, digits, \`_\` and \`-\`, as "plan.2.in_parallel.0"`,
      );
    else if (step.id.length > MAX_NAME_BYTES)
      add(`${at}.id`, `a step id is at most ${MAX_NAME_BYTES} bytes (it names a directory); this one is ${step.id.length}`);
    else if (ids.has(step.id))
      add(`${at}.id`, `the step id \`${step.id}\` is used twice: each step's id is its own (it names its activities and containers)`);
    ids.add(step.id);
    const own = step.across ? step.across.vars.reduce((n, v) => n * (Array.isArray(v.values) ? v.values.length : 1), times) : times;
    if (step.across) add(`${at}.across`, acrossProblem(own));
    if (step.attempts !== undefined) add(`${at}.attempts`, attemptsProblem(step.attempts));
    (step.services ?? []).forEach((s, i) => {
      const sat = `${at}.services[${i}]`;
      if (!SERVICE_NAME.test(s.name))
        add(`${sat}.name`, 'a service name starts with a letter and has only letters, digits, `_` and `-` (it names env vars)');
      if (s.file !== undefined) add(`${sat}.file`, artifactFileProblem(s.file));
      env(`${sat}.params`, s.params);
      mapping(`${sat}.inputMapping`, s.inputMapping);
      if (s.config) config(`${sat}.config`, s.config);
    });
    switch (step.kind) {
      case 'task':
        if (step.file !== undefined) add(`${at}.file`, artifactFileProblem(step.file));
        if (step.config) config(`${at}.config`, step.config);
        env(`${at}.params`, step.params);
        mapping(`${at}.inputMapping`, step.inputMapping);
        mapping(`${at}.outputMapping`, step.outputMapping);
        break;
      case 'get':
        add(`${at}.name`, nameProblem(step.name));
        break;
      case 'put':
        add(`${at}.name`, nameProblem(step.name));
        if (Array.isArray(step.inputs)) step.inputs.forEach((n, i) => add(`${at}.inputs[${i}]`, nameProblem(n)));
        break;
      case 'load_var':
        add(`${at}.file`, artifactFileProblem(step.file));
        break;
      case 'set_pipeline':
        add(`${at}.file`, artifactFileProblem(step.file));
        step.varFiles.forEach((f, i) => add(`${at}.varFiles[${i}]`, artifactFileProblem(f)));
        break;
      case 'do':
      case 'in_parallel':
        step.steps.forEach((child, i) => visit(child, `${at}.steps[${i}]`, own));
        break;
      case 'try':
        visit(step.step, `${at}.step`, own);
        break;
    }
    // Hooks wrap across: they run once per run of the step, not per iteration.
    for (const [hook, child] of Object.entries(step.hooks ?? {})) if (child) visit(child, `${at}.hooks.${hook}`, times);
  };
  return visit;
}

function jsonPath(path: PropertyKey[]): string {
  return path.length === 0
    ? '(input)'
    : path
        .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
        .join('')
        .replace(/^\./, '');
}

// Both directions, so a field added to compiled.ts without being added here (or the reverse) fails `npm run build`.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const checks: [
  Same<Step['kind'], z.output<typeof StepKinds>>,
  Same<z.output<typeof TaskStepSchema>, TaskStep>,
  Same<z.output<typeof DoStepSchema>, DoStep>,
  Same<z.output<typeof InParallelStepSchema>, InParallelStep>,
  Same<z.output<typeof TryStepSchema>, TryStep>,
  Same<z.output<typeof LoadVarStepSchema>, LoadVarStep>,
  Same<z.output<typeof GetStepSchema>, GetStep>,
  Same<z.output<typeof PutStepSchema>, PutStep>,
  Same<z.output<typeof SetPipelineStepSchema>, SetPipelineStep>,
  Same<z.output<typeof AcrossSchema>, Across>,
  Same<z.output<typeof TaskConfigSchema>, TaskConfig>,
  Same<z.output<typeof CompiledPlanSchema>, CompiledPlan>,
  Same<z.output<typeof BuildInputSchema>, BuildInput>,
] = [true, true, true, true, true, true, true, true, true, true, true, true, true];
void checks;
