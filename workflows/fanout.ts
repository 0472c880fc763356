import { executeChild, isCancellation, workflowInfo } from '@temporalio/workflow';
import type { Artifacts } from '../activities/types';
import type { ServiceAddress } from '../common/services';
import type { Step } from '../schemas/compiled';
import { messageOf } from './attempts';
import { StepError, type BuildContext, type BuildCredentials, type Frame } from './context';
import { runPool } from './pool';
import { PART_WORKFLOW, type PartRef, type StepStatus } from '../schemas/build';
import type { JobBuildRef } from '../schemas/pipeline-api';

/**
 * Big fan-out goes to child workflows (DESIGN.md), so that no history nears Temporal's limits
 * (51,200 events, 50 MiB, 2,000 pending activities): a sequential step costs ~7 history events
 * (3 of its activity, ~4 of the workflow task that follows), a service 4 activities.
 * A list (`do`, `in_parallel`, an `across` level) whose steps would run more than SPLIT_AT
 * activities runs in slices of at most PART_BUDGET activities, one child workflow (`buildPart`)
 * each, and the parent holds one child per slice. The budget also bounds the work of one
 * workflow task: on the loaded 2-core machine (load average ~30) starting 1,000 steps at once
 * took 5.7-11 s of wall time, and once 250 did too, past the SDK's 5 s limit on a workflow
 * activation, whose timeout then crashed the worker process ("async hook stack has become
 * corrupted"); 100 keeps it well under.
 * How many steps run at once is the worker's business (its activity slots, workers/pollers.ts);
 * max_in_flight stays an upper bound.
 */
export const PART_BUDGET = 100;
export const SPLIT_AT = PART_BUDGET;
/**
 * Parts one list runs at once, whatever max_in_flight says: the workflow task that starts them
 * stays as small as a part's own (PART_BUDGET commands), and far from Temporal's 2,000 pending
 * children. 100 parts of 100 already keep 10,000 steps in flight, past any worker's slots.
 */
export const PARTS_IN_FLIGHT = 100;
/** How long a part's workflow task may take, queueing in the worker included (see runPart). */
export const PART_TASK_TIMEOUT = '1 minute';
/** Failed tasks a part names for the build's message; the rest are in its status. */
export const FAILED_NAMED = 20;

/** Activities a step runs at most: a task, load_var, get or put one, a service four; times attempts and across values known before the build. */
export function weightOf(step: Step): number {
  const inner = 4 * (step.services?.length ?? 0) + (step.attempts ?? 1) * coreWeight(step);
  return inner * combinations(step) + hooksOf(step).reduce((n, h) => n + weightOf(h), 0);
}

/** Service addresses a step allocates at most (see serviceHost), counted as weightOf counts. */
export function servicesOf(step: Step): number {
  const inner = (step.services?.length ?? 0) + (step.attempts ?? 1) * sumOf(childrenOf(step), servicesOf);
  return inner * combinations(step) + hooksOf(step).reduce((n, h) => n + servicesOf(h), 0);
}

/** A step without steps inside (task, load_var, get, put) is one activity. */
function coreWeight(step: Step): number {
  const children = childrenOf(step);
  return children.length === 0 ? 1 : sumOf(children, weightOf);
}

function childrenOf(step: Step): Step[] {
  if (step.kind === 'do' || step.kind === 'in_parallel') return step.steps;
  if (step.kind === 'try') return [step.step];
  return [];
}

function hooksOf(step: Step): Step[] {
  return Object.values(step.hooks ?? {}).filter((h): h is Step => h !== undefined);
}

/** Iterations of an `across`; a list known only at run time (((.:var))) counts as one here and is measured when it runs. */
function combinations(step: Step): number {
  return (step.across?.vars ?? []).reduce((n, v) => n * (Array.isArray(v.values) ? v.values.length : 1), 1);
}

function sumOf(steps: Step[], f: (s: Step) => number): number {
  return steps.reduce((n, s) => n + f(s), 0);
}

/**
 * What an item costs the workflow that runs it: a heavy one (past SPLIT_AT) splits its own
 * lists into parts, so it costs about one activity here; splitting its list for it would only
 * add a child workflow holding that one item.
 */
function inlineCost(weight: number): number {
  return weight > SPLIT_AT ? 1 : weight;
}

/** Whether a list with items of these weights runs in parts. */
export function needsParts(weights: number[]): boolean {
  return weights.reduce((n, w) => n + inlineCost(w), 0) > SPLIT_AT;
}

/** Consecutive slices [from, to) of at most `budget` weight each (one item at least). */
export function slices(weights: number[], budget: number): [number, number][] {
  const out: [number, number][] = [];
  let from = 0;
  let sum = 0;
  weights.forEach((w, i) => {
    if (i > from && sum + w > budget) {
      out.push([from, i]);
      from = i;
      sum = 0;
    }
    sum += w;
  });
  if (weights.length > 0) out.push([from, weights.length]);
  return out;
}

/** What a part runs: a slice of a list step's steps, or a slice of one level of an `across`. */
export type PartList =
  | { kind: 'steps'; parent: string; steps: Step[] }
  | {
      kind: 'across';
      /** the across step without its hooks (they stay with the parent) */
      step: Step;
      depth: number;
      bindings: unknown[];
      indices: number[];
      /** every var's values; the split level's sliced to the part's items */
      values: unknown[][];
      /** index of the part's first item at the split level */
      offset: number;
    };

/** A part's input: the build's identity, the frame it runs in (as data), and its slice. */
export interface PartInput {
  buildId: string;
  runId: string;
  plan: string;
  taskQueue: string;
  workerTags: string[];
  releasesArtifacts: boolean;
  /** the first service index the part may allocate (the parent reserved the range) */
  servicesBase: number;
  credentials?: BuildCredentials;
  /** the pipeline job build the part belongs to: its puts save their versions to the pipeline */
  jobBuild?: JobBuildRef;
  frame: {
    artifacts: Artifacts;
    locals: Record<string, unknown>;
    services?: Record<string, ServiceAddress>;
    runKey: string;
    parent?: string;
    /** when the enclosing timeouts expire (workflow time, ms) */
    deadlines: number[];
  };
  list: PartList;
  limit: number;
  failFast: boolean;
}

export interface PartResult {
  ok: boolean;
  /** artifacts and ((.:vars)) the part's steps set in the scope it ran for */
  artifacts: Artifacts;
  locals: Record<string, unknown>;
  /** every output produced (released by the parent's releaser once nothing reads it) */
  produced: Artifacts[];
  /** failed tasks, "name (exit N)", for the build's message */
  failed: string[];
  steps: StepStatus[];
  parts: PartRef[];
}

/** A list as runList needs it: how heavy each item is and how to describe a slice of it. */
export interface ListSource {
  /** the list step's id */
  parent: string;
  /** unique in the build run (with the run key): names the parts' workflow ids */
  key: string;
  weights: number[];
  services: number[];
  slice(from: number, to: number): PartList;
}

/** The steps of a `do` or `in_parallel` as a list. */
export function stepsSource(step: Step & { steps: Step[] }): ListSource {
  return {
    parent: step.id,
    key: step.id,
    weights: step.steps.map(weightOf),
    services: step.steps.map(servicesOf),
    slice: (from, to) => ({ kind: 'steps', parent: step.id, steps: step.steps.slice(from, to) }),
  };
}

/**
 * Runs a list's items as runPool does, inline when they are light, else in slices by child
 * workflows: `lanes` slices at once with up to `inner` items in flight each, never more than
 * `limit` in all. The first failure of a slice stops the others under fail_fast.
 */
export async function runList(
  ctx: BuildContext,
  frame: Frame,
  source: ListSource,
  opts: { limit: number; failFast: boolean },
  runItem: (index: number) => Promise<boolean>,
  onSkipped: (index: number) => void,
): Promise<boolean> {
  const count = source.weights.length;
  if (!needsParts(source.weights)) return runPool(ctx, { count, ...opts }, runItem, onSkipped);
  const parts = slices(source.weights.map(inlineCost), PART_BUDGET);
  const inner = Math.min(opts.limit, Math.max(...parts.map(([from, to]) => to - from)));
  let lanes = Math.max(1, Math.floor(opts.limit / inner));
  if (lanes > PARTS_IN_FLIGHT && ctx.patched('parts-in-flight-capped')) lanes = PARTS_IN_FLIGHT;
  const refs = parts.map(([from, to]): PartRef => {
    const ref = {
      workflowId: `${ctx.buildId}.part.${ctx.runId.slice(0, 8)}.${frame.runKey}.${source.key}@${from}`,
      parent: source.parent,
      from,
      to,
      state: 'pending' as const,
    };
    ctx.status.part(ref);
    return ref;
  });
  return runPool(
    ctx,
    { count: parts.length, limit: lanes, failFast: opts.failFast },
    (p) => runPart(ctx, frame, source, refs[p], { limit: inner, failFast: opts.failFast }),
    (p) => ctx.status.partState(refs[p].workflowId, 'skipped'),
  );
}

async function runPart(
  ctx: BuildContext,
  frame: Frame,
  source: ListSource,
  ref: PartRef,
  opts: { limit: number; failFast: boolean },
): Promise<boolean> {
  const servicesBase = ctx.servicesAllocated;
  ctx.servicesAllocated += source.services.slice(ref.from, ref.to).reduce((a, b) => a + b, 0);
  const input: PartInput = {
    buildId: ctx.buildId,
    runId: ctx.runId,
    plan: ctx.plan,
    taskQueue: ctx.taskQueue,
    workerTags: ctx.workerTags,
    releasesArtifacts: ctx.releaser !== undefined,
    servicesBase,
    credentials: ctx.credentials,
    jobBuild: ctx.jobBuild,
    frame: {
      artifacts: frame.scope.allArtifacts(),
      locals: frame.scope.allLocals(),
      services: frame.services,
      runKey: frame.runKey,
      parent: source.parent,
      deadlines: (frame.deadlines ?? []).map((d) => d.at),
    },
    list: source.slice(ref.from, ref.to),
    ...opts,
  };
  ctx.status.partState(ref.workflowId, 'running');
  let result: PartResult;
  try {
    result = await executeChild<(input: PartInput) => Promise<PartResult>>(PART_WORKFLOW, {
      workflowId: ref.workflowId,
      taskQueue: workflowInfo().taskQueue,
      args: [input],
      staticSummary: `${source.parent} items ${ref.from}–${ref.to - 1}`,
      // The parts of one list start together, and a worker takes their first workflow tasks
      // (each starting up to PART_BUDGET steps) at once but runs them one after another: on the
      // loaded 2-core machine the last took 16 s, past the default 10 s, so the server
      // rescheduled them all again and again. A crashed worker's part waits this long instead.
      workflowTaskTimeout: PART_TASK_TIMEOUT,
    });
  } catch (err) {
    if (isCancellation(err)) {
      ctx.status.partState(ref.workflowId, 'aborted');
      throw err;
    }
    const details = (err as { cause?: { details?: unknown[] } }).cause?.details?.[0] as PartResult | undefined;
    if (details) apply(ctx, frame, details);
    ctx.status.partState(ref.workflowId, 'errored');
    throw new StepError(messageOf(err));
  }
  apply(ctx, frame, result);
  ctx.status.partState(ref.workflowId, result.ok ? 'succeeded' : 'failed');
  return result.ok;
}

function apply(ctx: BuildContext, frame: Frame, result: PartResult): void {
  for (const [name, ref] of Object.entries(result.artifacts)) frame.scope.setArtifact(name, ref);
  for (const [name, value] of Object.entries(result.locals)) frame.scope.setLocal(name, value);
  for (const outputs of result.produced) ctx.releaser?.produced(outputs);
  ctx.failedInParts.push(...result.failed.slice(0, Math.max(0, FAILED_NAMED - ctx.failedInParts.length)));
}
