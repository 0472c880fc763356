// Bare Temporal workflows for bench/step-overhead.ts: the cost of N activities with no
// engine around them, on the same dev server as Causeway. Bundled on its own.
import { proxyActivities } from '@temporalio/workflow';
import type * as activities from './bare-activities';

export interface BareInput {
  steps: number;
  /** where the activities run; unset = the workflow's own queue (eligible for eager dispatch) */
  activityQueue?: string;
}

function acts(input: BareInput) {
  return proxyActivities<typeof activities>({ startToCloseTimeout: '1 minute', taskQueue: input.activityQueue });
}

/** N no-op activities, one after another. */
export async function bareSequential(input: BareInput): Promise<void> {
  const { noop } = acts(input);
  for (let i = 0; i < input.steps; i++) await noop();
}

/** N no-op activities, all at once. */
export async function bareParallel(input: BareInput): Promise<void> {
  const { noop } = acts(input);
  await Promise.all(Array.from({ length: input.steps }, () => noop()));
}
