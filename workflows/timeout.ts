import { CancellationScope, isCancellation, sleep } from '@temporalio/workflow';
import type { Step } from '../schemas/compiled';
import { passThrough, StepError, type BuildContext, type Deadline, type Frame } from './context';

/**
 * `timeout`: cancels the step when the duration passes; the step then ends FAILED, as
 * Concourse's TimeoutStep does (it turns context.DeadlineExceeded into `false, nil`), so
 * on_failure runs, not on_error. Steps inside get the deadline in their frame, so they tell
 * this cancellation from an abort: they end errored and their own hooks run on_error.
 */
export function withTimeout(ctx: BuildContext, step: Step, frame: Frame, run: (frame: Frame) => Promise<boolean>): Promise<boolean> {
  const ms = step.timeoutMs;
  if (ms === undefined) return passThrough(ctx, () => run(frame));
  return runWithTimeout(ctx, step, ms, frame, run);
}

async function runWithTimeout(
  ctx: BuildContext,
  step: Step,
  ms: number,
  frame: Frame,
  run: (frame: Frame) => Promise<boolean>,
): Promise<boolean> {
  const work = new CancellationScope();
  const timer = new CancellationScope();
  const deadline: Deadline = { expired: false, at: Date.now() + ms };
  void timer
    .run(() => sleep(ms))
    .then(
      () => {
        deadline.expired = true;
        work.cancel();
      },
      () => undefined,
    );
  try {
    return await work.run(() => run({ ...frame, deadlines: [...(frame.deadlines ?? []), deadline] }));
  } catch (err) {
    if (!deadline.expired || !isCancellation(err)) throw err;
    const message = `timeout exceeded (${formatMs(ms)})`;
    if (!ctx.patched('timeout-fails-the-step')) throw new StepError(message);
    ctx.status.note(step.id, message);
    return false;
  } finally {
    timer.cancel();
  }
}

function formatMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
