import { CancellationScope, log } from '@temporalio/workflow';
import { messageOf } from './attempts';

/**
 * The teardowns of what a scope started (services, for now). When the scope ends, however
 * it ends, they run last-in first-out in a non-cancellable scope, so an aborted or timed-out
 * build still stops everything it started. A failing teardown is logged and the others run.
 */
export class Compensation {
  private readonly stack: { what: string; undo: () => Promise<void> }[] = [];

  push(what: string, undo: () => Promise<void>): void {
    this.stack.push({ what, undo });
  }

  async unwind(): Promise<void> {
    await CancellationScope.nonCancellable(async () => {
      for (let c = this.stack.pop(); c; c = this.stack.pop()) {
        try {
          await c.undo();
        } catch (err) {
          log.warn(`teardown of ${c.what} failed: ${messageOf(err)}`);
        }
      }
    });
  }
}
