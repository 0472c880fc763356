import type { InParallelStep } from '../schemas/compiled';
import type { BuildContext, Frame } from './context';
import { stepsSource, runList } from './fanout';

/** `in_parallel`: every step at once (or `limit` at a time); succeeds when all succeed. A big one runs in child workflows. */
export async function runInParallel(ctx: BuildContext, step: InParallelStep, frame: Frame): Promise<boolean> {
  return runList(
    ctx,
    frame,
    stepsSource(step),
    { limit: step.limit ?? step.steps.length, failFast: step.failFast },
    (i) => ctx.run(step.steps[i], { ...frame, parent: step.id }),
    (i) => ctx.status.skip(step.steps[i], step.id),
  );
}
