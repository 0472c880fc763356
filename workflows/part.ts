import { ApplicationFailure, CancellationScope, isCancellation, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Artifacts } from '../activities/types';
import type { BuildStatus } from '../schemas/messages';
import { acrossLevels } from './across';
import { messageOf } from './attempts';
import { failedTasks, stepActivities, statusQuery } from './build';
import { Scope, type BuildContext, type Deadline, type Frame } from './context';
import { FAILED_NAMED, type PartInput, type PartResult } from './fanout';
import { runPool } from './pool';
import { StatusTracker } from './status';
import { runIteration, runStep } from './step';
import { WorkerWait } from './waiting';
import { decidePatches } from './patches';
import { FAILURE_TYPES, type BuildSummary } from '../schemas/build';
import { BuildInputError, parsePartInput, type PartInputData } from '../schemas/build-input';

/** Failure type of a part whose slice errored; its details carry the PartResult. */
export const PART_ERRORED = 'PartErrored';

/**
 * A child workflow running one slice of a big list for its build (workflows/fanout.ts): the
 * same step code as the build, on the build's worker, with the build's id and run id (so its
 * steps' processes, logs and artifacts are named as if the build ran them itself). It holds
 * the slice's steps, the scope they see (as data) and their status tree; the parent holds
 * one reference per part. An abort reaches it as cancellation (the parent's scope cancels
 * the child); a cancellation after an enclosing timeout's deadline is that timeout.
 */
export async function buildPart(raw: unknown): Promise<PartResult> {
  const input = validInput(raw);
  const patches = decidePatches();
  const root = CancellationScope.current();
  const status = new StatusTracker(input.plan);
  const summary: BuildSummary = {
    buildId: workflowInfo().workflowId,
    plan: input.plan,
    status: 'started',
    startedAt: new Date().toISOString(),
    steps: [],
  };
  setHandler(statusQuery, () => ({ ...summary, steps: status.list(), parts: status.parts() }));

  const deadlines: Deadline[] = input.frame.deadlines.map((at) => ({
    at,
    get expired() {
      return root.consideredCancelled && Date.now() >= at;
    },
  }));
  const produced: Artifacts[] = [];
  const ctx: BuildContext = {
    buildId: input.buildId,
    runId: input.runId,
    plan: input.plan,
    workerTags: input.workerTags,
    taskQueue: input.taskQueue,
    acts: stepActivities(input.taskQueue),
    servicesAllocated: input.servicesBase,
    credentials: input.credentials,
    jobBuild: input.jobBuild,
    status,
    failedInParts: [],
    run: (step, frame) => runStep(ctx, step, frame),
    aborted: () => root.consideredCancelled && !deadlines.some((d) => d.expired),
    // The build's releaser knows the whole plan: outputs go back to it with the result.
    releaser: input.releasesArtifacts ? { produced: (outputs) => produced.push(outputs), stepEnded: () => undefined } : undefined,
    workerWait: patches('worker-wait-note') ? new WorkerWait(status, input.taskQueue) : undefined,
    leanWrappers: patches('lean-step-wrappers'),
    patched: patches,
  };
  const outer = new Scope();
  for (const [name, ref] of Object.entries(input.frame.artifacts)) outer.setArtifact(name, ref);
  for (const [name, value] of Object.entries(input.frame.locals)) outer.setLocal(name, value);
  const scope = outer.child();
  const frame: Frame = { scope, parent: input.frame.parent, runKey: input.frame.runKey, services: input.frame.services, deadlines };

  const result = (ok: boolean, state: BuildStatus): PartResult => {
    summary.status = state;
    summary.finishedAt = new Date().toISOString();
    return {
      ok,
      ...scope.own(),
      produced,
      failed: [...failedTasks(status), ...ctx.failedInParts].slice(0, FAILED_NAMED),
      steps: status.list(),
      parts: status.parts(),
    };
  };
  try {
    const ok = await runSlice(ctx, input, frame);
    return result(ok, ok ? 'succeeded' : 'failed');
  } catch (err) {
    if (isCancellation(err)) {
      summary.status = 'aborted';
      throw err;
    }
    summary.message = messageOf(err);
    throw ApplicationFailure.create({
      type: PART_ERRORED,
      message: summary.message,
      nonRetryable: true,
      details: [result(false, 'errored')],
    });
  }
}

/**
 * Any client can start a part as it can a build: an input that is not one its build made fails
 * the part at once and for good, as the build workflow's validInput does (a throw that is not a
 * Temporal failure would fail the workflow task instead, retried forever).
 */
function validInput(raw: unknown): PartInput {
  try {
    return parsePartInput(raw, workflowInfo().parent?.workflowId);
  } catch (err) {
    if (!(err instanceof BuildInputError)) throw err;
    throw ApplicationFailure.create({ type: FAILURE_TYPES.errored, message: err.message, nonRetryable: true });
  }
}

// Both directions, so a field added to PartInput without being added to PartInputSchema (or the reverse) fails `npm run build`.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const partInputMatches: Same<PartInputData, PartInput> = true;
void partInputMatches;

/** The slice itself, run inline (never split again: it is at most one part's budget). */
function runSlice(ctx: BuildContext, input: PartInput, frame: Frame): Promise<boolean> {
  const list = input.list;
  const opts = { limit: input.limit, failFast: input.failFast };
  if (list.kind === 'steps') {
    return runPool(
      ctx,
      { count: list.steps.length, ...opts },
      (i) => ctx.run(list.steps[i], frame),
      (i) => ctx.status.skip(list.steps[i], list.parent),
    );
  }
  const levels = acrossLevels(ctx, list.step, frame, list.values, (iteration, f) => runIteration(ctx, iteration, f), {
    depth: list.depth,
    offset: list.offset,
  });
  return levels.level(list.depth, list.bindings, list.indices, { limit: input.limit });
}
