import { CancellationScope, isCancellation, sleep } from '@temporalio/workflow';
import type { Step } from '../schemas/compiled';
import { StepError, type Deadline } from './context';

/**
 * `timeout`: cancels the step when the duration passes; the step then ends errored, as in Concourse.
 * `run` gets the deadline so steps inside can tell this cancellation from an abort (their
 * hooks run on_error then, not on_abort).
 */
export async function withTimeout(step: Step, run: (deadline?: Deadline) => Promise<boolean>): Promise<boolean> {
  const ms = step.timeoutMs;
  if (ms === undefined) return run();
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
    return await work.run(() => run(deadline));
  } catch (err) {
    if (deadline.expired && isCancellation(err)) throw new StepError(`timeout exceeded (${formatMs(ms)})`);
    throw err;
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
