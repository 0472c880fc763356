import { CancellationScope, isCancellation } from '@temporalio/workflow';
import type { BuildContext } from './context';

/**
 * Runs items with at most `limit` at once, as `in_parallel` and `across` do. With
 * `failFast`, the first failure or error interrupts the running items and stops
 * scheduling new ones. Resolves true when every item succeeded; throws the first
 * error (an abort first of all) after every started item has ended.
 */
export async function runPool(
  ctx: BuildContext,
  opts: { count: number; limit: number; failFast: boolean },
  runItem: (index: number) => Promise<boolean>,
  onSkipped: (index: number) => void,
): Promise<boolean> {
  const scope = new CancellationScope();
  let ok = true;
  let stopped = false;
  let next = 0;
  const errors: unknown[] = [];
  const stop = () => {
    if (opts.failFast && !stopped) {
      stopped = true;
      scope.cancel();
    }
  };
  const lane = async () => {
    // Once the pool is cancelled from outside (abort, an enclosing timeout) no new item may
    // start: an item started in a cancelled scope would still run its hooks (ensure,
    // on_error) for a step that never ran. Those items are skipped instead.
    while (next < opts.count && !stopped && !scope.consideredCancelled) {
      const i = next++;
      try {
        if (!(await runItem(i))) {
          ok = false;
          stop();
        }
      } catch (err) {
        // An item interrupted by fail_fast is not an error of its own.
        if (isCancellation(err) && stopped && !ctx.aborted()) continue;
        errors.push(err);
        stop();
      }
    }
  };
  await scope.run(() => Promise.all(Array.from({ length: Math.max(1, Math.min(opts.limit, opts.count)) }, lane)));
  for (let i = next; i < opts.count; i++) onSkipped(i);
  const abort = errors.find((e) => isCancellation(e));
  if (abort !== undefined) throw abort;
  if (errors.length > 0) throw errors[0];
  return ok;
}
