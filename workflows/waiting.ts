// A step whose activity no worker starts says so in the build's details and `status` query:
// the workflow cannot see an activity start, so after WAIT_NOTE_MS it asks Temporal (a local
// activity describing the workflow) which of its task activities are still only scheduled.
// One timer at a time per workflow, and a describe only for steps still unstarted that long:
// a build of quick steps pays a timer every WAIT_NOTE_MS, not a request per step.
import { CancellationScope, condition, log, proxyLocalActivities, sleep, workflowInfo, WorkflowError } from '@temporalio/workflow';
import type { BuildActivities } from '../activities/types';
import type { StatusTracker } from './status';

/** How long a step's activity may stay unstarted before the build says it waits for a worker. */
export const WAIT_NOTE_MS = 5_000;
/** How often a waiting step is looked at again, to take the note back once a worker has started it. */
const RECHECK_MS = 5_000;
/**
 * A step queued behind its worker's limits (the queue is polled) is looked at again ever more
 * rarely, up to this: a big fan-out on a busy worker must not cost a describe every few seconds.
 */
const QUEUED_RECHECK_MAX_MS = 60_000;

interface Watched {
  stepId: string;
  scheduledAt: number;
  /** workflow time when the step's activity is next looked at */
  checkAt: number;
  /** how long until the next look while the step is only queued */
  backoffMs: number;
  waiting: boolean;
}

const { pendingActivities } = proxyLocalActivities<BuildActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { maximumAttempts: 2 },
});

/** Watches the task activities of one workflow (a build or a part) until a worker starts them. */
export class WorkerWait {
  private readonly watched = new Map<string, Watched>();
  private scheduledCount = 0;
  private watching = false;

  constructor(
    private readonly status: StatusTracker,
    private readonly taskQueue: string,
  ) {}

  /** A task activity about to be scheduled: the id to schedule it under, and `done` once it has ended. */
  schedule(stepId: string): { activityId: string; done(): void } {
    // Unique among the workflow's activities; the describe names pending activities by it.
    const activityId = `task-${++this.scheduledCount}-${stepId}`;
    const now = Date.now();
    this.watched.set(activityId, { stepId, scheduledAt: now, checkAt: now + WAIT_NOTE_MS, backoffMs: RECHECK_MS, waiting: false });
    if (!this.watching) {
      this.watching = true;
      // An abort of the build must not end the watch with a cancellation: it simply stops mattering.
      void CancellationScope.nonCancellable(() => this.watch()).catch((err: unknown) => this.stopWatching(err));
    }
    return {
      activityId,
      done: () => {
        const w = this.watched.get(activityId);
        this.watched.delete(activityId);
        if (w?.waiting) this.status.waiting(w.stepId, undefined);
      },
    };
  }

  /**
   * The note is advice: a bug in the watch must not fail the build's workflow task on every
   * retry (a detached coroutine's throw does), which once hung builds. The SDK's own errors
   * (non-determinism) still fail the task, as they must.
   */
  private stopWatching(err: unknown): void {
    if (err instanceof WorkflowError) throw err;
    log.warn(`the waiting-for-a-worker note stopped: ${err instanceof Error ? err.message : String(err)}`);
    for (const w of this.watched.values()) if (w.waiting) this.status.waiting(w.stepId, undefined);
    this.watched.clear();
  }

  private async watch(): Promise<never> {
    for (;;) {
      await condition(() => this.watched.size > 0);
      // The step that made the condition true may have ended in the same activation, before this runs.
      if (this.watched.size === 0) continue;
      const now = Date.now();
      const due = [...this.watched].filter(([, w]) => w.checkAt <= now);
      if (due.length === 0) {
        await sleep(Math.min(...[...this.watched.values()].map((w) => w.checkAt)) - now);
        continue;
      }
      const info = workflowInfo();
      const pending = await pendingActivities({ workflowId: info.workflowId, runId: info.runId, taskQueue: this.taskQueue }).catch(
        () => undefined,
      );
      const checked = Date.now();
      for (const [id, w] of due) {
        if (!this.watched.has(id)) continue;
        const state = pending?.states[id];
        if (state === 'started') {
          // A worker has it: the step is no longer watched (a retry after a worker crash is not noticed).
          this.watched.delete(id);
          if (w.waiting) this.status.waiting(w.stepId, undefined);
          continue;
        }
        if (state === 'scheduled' && pending?.workerRunning) {
          // Its worker is there and busy: the step is queued, not waiting for a worker.
          if (w.waiting) this.status.waiting(w.stepId, undefined);
          w.waiting = false;
          w.checkAt = checked + w.backoffMs;
          w.backoffMs = Math.min(QUEUED_RECHECK_MAX_MS, w.backoffMs * 2);
          continue;
        }
        w.checkAt = checked + RECHECK_MS;
        if (state === 'scheduled' && !w.waiting) {
          w.waiting = true;
          this.status.waiting(
            w.stepId,
            `waiting for a worker since ${new Date(w.scheduledAt).toISOString()}: ` +
              `no worker has started it from task queue ${this.taskQueue} (is the build's worker running? \`causeway workers\`)`,
          );
        }
      }
    }
  }
}
