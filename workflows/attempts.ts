import { isCancellation } from '@temporalio/workflow';
import type { Step } from '../schemas/compiled';
import type { StepState } from '../schemas/messages';
import type { BuildContext, Frame } from './context';

/**
 * `attempts`: reruns the step after a failure or an error, up to N times in all; the
 * last attempt's result stands. Each attempt gets its own run key, so a retried task
 * starts a fresh process instead of finding the previous attempt's.
 * It also records each attempt's state in the status tree.
 */
export async function withAttempts(ctx: BuildContext, step: Step, frame: Frame, run: (frame: Frame) => Promise<boolean>): Promise<boolean> {
  const attempts = step.attempts ?? 1;
  for (let attempt = 1; ; attempt++) {
    const last = attempt >= attempts;
    const attemptFrame = attempts > 1 ? { ...frame, runKey: `${frame.runKey}.${attempt}` } : frame;
    ctx.status.start(step.id);
    try {
      const ok = await run(attemptFrame);
      ctx.status.finish(step.id, ok ? 'succeeded' : 'failed');
      if (ok || last) return ok;
    } catch (err) {
      // A step cut short by an enclosing timeout ended errored (as its build will), not aborted.
      const timedOut = frame.deadlines?.some((d) => d.expired) ?? false;
      const state: StepState = isCancellation(err) && !timedOut ? 'aborted' : 'errored';
      ctx.status.finish(step.id, state, {
        message: isCancellation(err) && timedOut ? 'interrupted: an enclosing timeout expired' : messageOf(err),
      });
      if (isCancellation(err) || last) throw err;
    }
  }
}

/** The innermost message of a Temporal failure chain: what the user needs to read. */
export function messageOf(err: unknown): string {
  let e = err as { message?: string; cause?: unknown } | undefined;
  while (e?.cause) e = e.cause as typeof e;
  return e?.message ?? String(err);
}
