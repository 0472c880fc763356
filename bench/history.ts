// Where a workflow's time goes, read from its history's event times: for each activity
// of one type, queue latency (Scheduled -> Started), run time (Started -> Completed) and,
// for sequential plans, the workflow-task turnaround (Completed -> next Scheduled), split
// into its workflow-task phases.
import type { temporal } from '@temporalio/proto';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

export interface Breakdown {
  /** activities of the type that completed */
  activities: number;
  /** averages over those activities, ms */
  queueMs: number;
  runMs: number;
  /** sequential only: Completed -> next Scheduled, and its parts */
  turnaroundMs?: number;
  /** Completed -> WorkflowTaskScheduled */
  wftScheduleMs?: number;
  /** WorkflowTaskScheduled -> WorkflowTaskStarted: the workflow task waiting for the worker */
  wftQueueMs?: number;
  /** WorkflowTaskStarted -> WorkflowTaskCompleted: the worker running workflow code */
  wftRunMs?: number;
  /** WorkflowTaskCompleted -> next ActivityTaskScheduled */
  wftToScheduleMs?: number;
  /** workflow start -> first activity of the type scheduled */
  beforeFirstMs: number;
  /** last activity of the type completed -> workflow completed */
  afterLastMs: number;
  /** first Scheduled -> last Completed */
  spanMs: number;
}

function ms(event: HistoryEvent): number {
  const t = event.eventTime;
  if (!t) throw new Error(`history event ${event.eventId} has no time`);
  return Number(t.seconds ?? 0) * 1000 + (t.nanos ?? 0) / 1e6;
}

const avg = (xs: number[]): number => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

export function breakdown(events: HistoryEvent[], activityType: string, sequential: boolean): Breakdown {
  const scheduled = new Map<string, { index: number; event: HistoryEvent }>();
  const started = new Map<string, HistoryEvent>();
  const completed: Array<{ index: number; scheduledId: string; event: HistoryEvent }> = [];
  events.forEach((event, index) => {
    const id = String(event.eventId);
    if (event.activityTaskScheduledEventAttributes?.activityType?.name === activityType) scheduled.set(id, { index, event });
    const s = event.activityTaskStartedEventAttributes;
    if (s && scheduled.has(String(s.scheduledEventId))) started.set(String(s.scheduledEventId), event);
    const c = event.activityTaskCompletedEventAttributes;
    if (c && scheduled.has(String(c.scheduledEventId))) completed.push({ index, scheduledId: String(c.scheduledEventId), event });
  });
  if (completed.length === 0) throw new Error(`no completed ${activityType} activity in the history`);

  const queue: number[] = [];
  const run: number[] = [];
  for (const c of completed) {
    const sched = scheduled.get(c.scheduledId)!.event;
    const start = started.get(c.scheduledId);
    if (!start) throw new Error(`activity ${c.scheduledId} completed without a started event`);
    queue.push(ms(start) - ms(sched));
    run.push(ms(c.event) - ms(start));
  }

  const firstScheduled = Math.min(...[...scheduled.values()].map((s) => ms(s.event)));
  const lastCompleted = Math.max(...completed.map((c) => ms(c.event)));
  const wfStarted = events.find((e) => e.workflowExecutionStartedEventAttributes);
  const wfEnded = events.find((e) => e.workflowExecutionCompletedEventAttributes);
  const result: Breakdown = {
    activities: completed.length,
    queueMs: avg(queue),
    runMs: avg(run),
    beforeFirstMs: wfStarted ? firstScheduled - ms(wfStarted) : NaN,
    afterLastMs: wfEnded ? ms(wfEnded) - lastCompleted : NaN,
    spanMs: lastCompleted - firstScheduled,
  };
  if (!sequential) return result;

  const turnaround: number[] = [];
  const wftSchedule: number[] = [];
  const wftQueue: number[] = [];
  const wftRun: number[] = [];
  const wftToSchedule: number[] = [];
  for (const c of completed) {
    const after = events.slice(c.index + 1);
    const next = after.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === activityType);
    if (!next) continue; // the last step
    const until = after.indexOf(next);
    const window = after.slice(0, until);
    // The workflow task that scheduled the next step is the last one completed before it.
    const wtCompleted = [...window].reverse().find((e) => e.workflowTaskCompletedEventAttributes);
    const wtStarted = [...window].reverse().find((e) => e.workflowTaskStartedEventAttributes);
    const wtScheduled = window.find((e) => e.workflowTaskScheduledEventAttributes);
    turnaround.push(ms(next) - ms(c.event));
    if (wtCompleted && wtStarted && wtScheduled) {
      wftSchedule.push(ms(wtScheduled) - ms(c.event));
      wftQueue.push(ms(wtStarted) - ms(wtScheduled));
      wftRun.push(ms(wtCompleted) - ms(wtStarted));
      wftToSchedule.push(ms(next) - ms(wtCompleted));
    }
  }
  return {
    ...result,
    turnaroundMs: avg(turnaround),
    wftScheduleMs: avg(wftSchedule),
    wftQueueMs: avg(wftQueue),
    wftRunMs: avg(wftRun),
    wftToScheduleMs: avg(wftToSchedule),
  };
}

/** Averages breakdowns field by field (one per measured repetition). */
export function meanBreakdown(all: Breakdown[]): Breakdown {
  const keys = Object.keys(all[0]) as Array<keyof Breakdown>;
  return Object.fromEntries(keys.map((k) => [k, avg(all.map((b) => b[k] as number))])) as unknown as Breakdown;
}
