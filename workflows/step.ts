import type { Step } from '../schemas/compiled';
import { withAcross } from './across';
import { withAttempts } from './attempts';
import type { BuildContext, Frame } from './context';
import { runDo } from './do';
import { runGet } from './get';
import { runPut } from './put';
import { withHooks } from './hooks';
import { runInParallel } from './in-parallel';
import { runLoadVar } from './load-var';
import { withServices } from './services';
import { runSetPipeline } from './set-pipeline';
import { runTask } from './task';
import { withTimeout } from './timeout';
import { runTry } from './try';

/**
 * Runs any step with its modifiers, wrapped as Concourse wraps them, outermost
 * first: hooks, across, services, attempts, timeout (per attempt), then the step itself.
 * So each across iteration has its own services, and every attempt reuses them.
 * Resolves true (succeeded) or false (failed); throws StepError (errored) or a
 * cancellation (aborted).
 */
export async function runStep(ctx: BuildContext, step: Step, frame: Frame): Promise<boolean> {
  ctx.status.register(step, frame.parent, step.id, frame.scope.allLocals());
  try {
    return await withHooks(ctx, step, frame, () =>
      withAcross(ctx, step, frame, (iteration, iterationFrame) => runIteration(ctx, iteration, iterationFrame)),
    );
  } finally {
    ctx.releaser?.stepEnded(step.id);
  }
}

/** One iteration of a step (the step itself when it has no `across`): services, attempts, timeout, the step. */
export function runIteration(ctx: BuildContext, iteration: Step, frame: Frame): Promise<boolean> {
  return withServices(ctx, iteration, frame, (servicesFrame) =>
    withAttempts(ctx, iteration, servicesFrame, (attemptFrame) =>
      withTimeout(ctx, iteration, attemptFrame, (timeoutFrame) => runCore(ctx, iteration, timeoutFrame)),
    ),
  );
}

function runCore(ctx: BuildContext, step: Step, frame: Frame): Promise<boolean> {
  switch (step.kind) {
    case 'task':
      return runTask(ctx, step, frame);
    case 'do':
      return runDo(ctx, step, frame);
    case 'in_parallel':
      return runInParallel(ctx, step, frame);
    case 'try':
      return runTry(ctx, step, frame);
    case 'load_var':
      return runLoadVar(ctx, step, frame);
    case 'get':
      return runGet(ctx, step, frame);
    case 'put':
      return runPut(ctx, step, frame);
    case 'set_pipeline':
      return runSetPipeline(ctx, step, frame);
  }
}
