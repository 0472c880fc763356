import { isCancellation } from '@temporalio/workflow';
import type { TryStep } from '../schemas/compiled';
import type { BuildContext, Frame } from './context';

/** `try`: the step's failure or error is masked as success; an abort is not. */
export async function runTry(ctx: BuildContext, step: TryStep, frame: Frame): Promise<boolean> {
  try {
    await ctx.run(step.step, { ...frame, parent: step.id });
  } catch (err) {
    if (isCancellation(err)) throw err;
  }
  return true;
}
