import type { DoStep } from '../schemas/compiled';
import type { BuildContext, Frame } from './context';
import { runStep } from './step';

/** `do`: steps in order; the first failure stops it (Concourse's do step). */
export async function runDo(ctx: BuildContext, step: DoStep, frame: Frame): Promise<boolean> {
  for (const [i, child] of step.steps.entries()) {
    if (!(await runStep(ctx, child, { ...frame, parent: step.id }))) {
      for (const skipped of step.steps.slice(i + 1)) ctx.status.skip(skipped, step.id);
      return false;
    }
  }
  return true;
}
