import { CancellationScope, isCancellation } from '@temporalio/workflow';
import type { Step } from '../schemas/compiled';
import { passThrough, type BuildContext, type Frame } from './context';

/**
 * on_success / on_failure / on_error / on_abort / ensure, with Concourse's semantics:
 * on_success's result becomes the step's; on_failure runs but the step stays failed;
 * ensure always runs and fails the step if it fails; on_abort runs when the step is
 * interrupted by an abort or fail_fast, on_error for every other error, timeouts included. Hooks after an abort run in a
 * non-cancellable scope, so cleanup happens even though the build is cancelled.
 */
export function withHooks(ctx: BuildContext, step: Step, frame: Frame, run: () => Promise<boolean>): Promise<boolean> {
  const hooks = step.hooks;
  if (!hooks) return passThrough(ctx, run);
  return runWithHooks(ctx, hooks, frame, step, run);
}

async function runWithHooks(
  ctx: BuildContext,
  hooks: NonNullable<Step['hooks']>,
  frame: Frame,
  step: Step,
  run: () => Promise<boolean>,
): Promise<boolean> {
  const hookFrame: Frame = { ...frame, parent: step.id };
  const runHook = (hook: Step) =>
    CancellationScope.current().consideredCancelled
      ? CancellationScope.nonCancellable(() => ctx.run(hook, hookFrame))
      : ctx.run(hook, hookFrame);

  let ok = false;
  let error: unknown;
  try {
    ok = await run();
  } catch (err) {
    error = err;
  }

  // Concourse nests ensure outside the other hooks: an on_success/on_failure/on_error/on_abort
  // hook that errors or is interrupted by an abort must not stop ensure from running.
  let hookError: unknown;
  try {
    if (error === undefined) {
      if (ok && hooks.on_success) ok = await runHook(hooks.on_success);
      else if (!ok && hooks.on_failure) await runHook(hooks.on_failure);
    } else if (isCancellation(error) && !frame.deadlines?.some((d) => d.expired)) {
      // An abort, or fail_fast stopping this step because a sibling failed: Concourse
      // cancels the step's context in both cases and runs on_abort.
      if (hooks.on_abort) await runHook(hooks.on_abort);
    } else if (hooks.on_error) {
      // Any other error, including an enclosing step's timeout interrupting this one:
      // Concourse runs on_error then ("running longer than a timeout"), not on_abort.
      await runHook(hooks.on_error);
    }
  } catch (err) {
    hookError = err;
  }

  if (hooks.ensure) {
    const ensured = await runHook(hooks.ensure);
    ok = ok && ensured;
  }
  if (error !== undefined) throw error;
  if (hookError !== undefined) throw hookError;
  return ok;
}
