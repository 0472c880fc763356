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
const ContainerLimits = z.strictObject({ cpu: z.number().optional(), memory: z.number().meta({ description: 'bytes' }).optional() });

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
  timeoutMs: z.number().int().positive().optional(),
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

export const CompiledPlanSchema = z.strictObject({
  name: z.string().min(1).meta({ description: 'job name' }),
  source: z.string().meta({ description: 'the plan file it came from, for messages' }),
  plan: DoStepSchema.meta({ description: 'the job\'s plan, run as a `do` with id "plan"' }),
  varSources: z
    .array(
      z.strictObject({
        name: z.string().min(1),
        type: z.enum(['dummy', 'idtoken', 'kubernetes', 'vault']),
        config: z.record(z.string(), z.unknown()),
        job: z.string().optional().meta({ description: "idtoken: the job whose plan this is, a claim of the source's tokens" }),
        instanceVars: z
          .record(z.string(), z.unknown())
          .optional()
          .meta({ description: "idtoken: the instance vars of the job's pipeline, a claim of the source's tokens" }),
      }),
    )
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
  constructor(readonly issues: string[]) {
    super(`invalid build input (see docs/client.md): ${issues.join('; ')}`);
    this.name = 'BuildInputError';
  }
}

/** Parses the `build` workflow's argument; throws BuildInputError naming what is wrong. */
export function parseBuildInput(raw: unknown): BuildInput {
  const result = BuildInputSchema.safeParse(raw);
  if (result.success) return result.data;
  throw new BuildInputError(result.error.issues.slice(0, 10).map((i) => `${jsonPath(i.path)}: ${i.message}`));
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
