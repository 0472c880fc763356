import { Context } from '@temporalio/activity';

/**
 * Heartbeats every second while `work` runs, so a worker that dies mid-activity is noticed
 * within the heartbeat timeout instead of the start-to-close timeout (long, for big uploads).
 * `details`: what a retried attempt resumes from (log offsets), sent with each heartbeat.
 */
export async function heartbeating<T>(work: () => Promise<T>, details?: () => unknown): Promise<T> {
  const ctx = Context.current();
  const timer = setInterval(() => ctx.heartbeat(details?.()), 1000);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}
