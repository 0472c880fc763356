import type { DoStep } from '../schemas/compiled';
import type { BuildContext, Frame } from './context';
import { needsParts, runList, stepsSource } from './fanout';

/** `do`: steps in order; the first failure, error or abort stops it and the rest are skipped (Concourse's do step). */
export async function runDo(ctx: BuildContext, step: DoStep, frame: Frame): Promise<boolean> {
  const source = stepsSource(step);
  if (needsParts(source.weights)) {
    // A long `do` runs in slices, one child workflow after another: a pool of one lane
    // that stops at the first failure or error is a `do`.
    return runList(
      ctx,
      frame,
      source,
      { limit: 1, failFast: true },
      (i) => ctx.run(step.steps[i], { ...frame, parent: step.id }),
      (i) => ctx.status.skip(step.steps[i], step.id),
    );
  }
  const skipFrom = (i: number) => {
    for (const skipped of step.steps.slice(i + 1)) ctx.status.skip(skipped, step.id);
  };
  for (const [i, child] of step.steps.entries()) {
    let ok: boolean;
    try {
      ok = await ctx.run(child, { ...frame, parent: step.id });
    } catch (err) {
      // An errored or aborted step stops the do as a failure does: without this the steps
      // after it never appear in the status tree of a finished build.
      skipFrom(i);
      throw err;
    }
    if (!ok) {
      skipFrom(i);
      return false;
    }
  }
  return true;
}
