import { defaultPayloadConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';

type History = temporal.api.history.v1.IHistory;

/** Activities that run a step; their input names the step. */
const STEP_ACTIVITIES = new Set(['runTask', 'loadVar']);

/** What every step activity's input has (activities/types.ts's RunTaskRequest, LoadVarRequest). */
interface StepActivityInput {
  step: { id: string };
}

export interface StepSchedule {
  stepId: string;
  /** the WorkflowTaskCompleted event that scheduled the step: where a reset re-runs it from */
  resetEventId: number;
  scheduledEventId: number;
}

/** Every step activity a build's history scheduled, in order, with the point to reset to for each. */
export function stepSchedules(history: History): StepSchedule[] {
  const out: StepSchedule[] = [];
  for (const event of history.events ?? []) {
    const attrs = event.activityTaskScheduledEventAttributes;
    if (!attrs || !STEP_ACTIVITIES.has(attrs.activityType?.name ?? '')) continue;
    const payload = attrs.input?.payloads?.[0];
    if (!payload) continue;
    const input = defaultPayloadConverter.fromPayload<StepActivityInput>(payload);
    out.push({
      stepId: input.step.id,
      resetEventId: Number(attrs.workflowTaskCompletedEventId),
      scheduledEventId: Number(event.eventId),
    });
  }
  return out;
}

/** Where to reset a build so that `stepId` runs again: just before its first attempt was scheduled. */
export function resetPointFor(history: History, stepId: string): StepSchedule | undefined {
  return stepSchedules(history).find((s) => s.stepId === stepId);
}
