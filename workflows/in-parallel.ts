import type { InParallelStep } from '../schemas/compiled';
import type { BuildContext, Frame } from './context';
import { runPool } from './pool';

/** `in_parallel`: every step at once (or `limit` at a time); succeeds when all succeed. */
export async function runInParallel(ctx: BuildContext, step: InParallelStep, frame: Frame): Promise<boolean> {
  return runPool(
    ctx,
    { count: step.steps.length, limit: step.limit ?? step.steps.length, failFast: step.failFast },
    (i) => ctx.run(step.steps[i], { ...frame, parent: step.id }),
    (i) => ctx.status.skip(step.steps[i], step.id),
  );
}
