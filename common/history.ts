import { defaultPayloadConverter, type Payload, type PayloadCodec } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { PART_WORKFLOW } from '../schemas/build';

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

/**
 * A copy of `history` whose step activities' and parts' inputs are decoded by `codecs` (the
 * client's payload codec): those inputs are encrypted in the history as stored.
 */
export async function withDecodedInputs(history: History, codecs: PayloadCodec[]): Promise<History> {
  const decode = async (payloads: temporal.api.common.v1.IPayload[] | null | undefined) => {
    let out = (payloads ?? []) as Payload[];
    for (const codec of [...codecs].reverse()) out = await codec.decode(out);
    return out;
  };
  const events = await Promise.all(
    (history.events ?? []).map(async (event) => {
      const activity = event.activityTaskScheduledEventAttributes;
      if (activity && STEP_ACTIVITIES.has(activity.activityType?.name ?? '')) {
        return {
          ...event,
          activityTaskScheduledEventAttributes: { ...activity, input: { payloads: await decode(activity.input?.payloads) } },
        };
      }
      const child = event.startChildWorkflowExecutionInitiatedEventAttributes;
      if (child && child.workflowType?.name === PART_WORKFLOW) {
        return {
          ...event,
          startChildWorkflowExecutionInitiatedEventAttributes: { ...child, input: { payloads: await decode(child.input?.payloads) } },
        };
      }
      return event;
    }),
  );
  return { ...history, events };
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

/** What a part's input says about its slice (workflows/fanout.ts's PartInput). */
interface PartInput {
  list:
    | { kind: 'steps'; steps: { id: string }[] }
    | { kind: 'across'; step: { id: string }; depth: number; indices: number[]; values: unknown[][]; offset: number };
}

/** A part (child workflow) the build started, and whether a step id is one of its steps. */
export interface PartStart {
  workflowId: string;
  resetEventId: number;
  covers(stepId: string): boolean;
}

/** Every part a build's history started (workflows/fanout.ts), with the point to reset to for each. */
export function partStarts(history: History): PartStart[] {
  const out: PartStart[] = [];
  for (const event of history.events ?? []) {
    const attrs = event.startChildWorkflowExecutionInitiatedEventAttributes;
    const payload = attrs?.input?.payloads?.[0];
    if (!attrs || attrs.workflowType?.name !== PART_WORKFLOW || !payload) continue;
    const input = defaultPayloadConverter.fromPayload<PartInput>(payload);
    out.push({
      workflowId: attrs.workflowId ?? '',
      resetEventId: Number(attrs.workflowTaskCompletedEventId),
      covers: (id) => partCovers(input, id),
    });
  }
  return out;
}

function partCovers(input: PartInput, stepId: string): boolean {
  const within = (id: string) => stepId === id || stepId.startsWith(`${id}.`);
  const list = input.list;
  if (list.kind === 'steps') return list.steps.some((s) => within(s.id));
  const prefix = `${list.step.id}.across.${list.indices.map((i) => `${i}.`).join('')}`;
  if (!stepId.startsWith(prefix)) return false;
  const index = Number(stepId.slice(prefix.length).split('.')[0]);
  return Number.isInteger(index) && index >= list.offset && index < list.offset + list.values[list.depth].length;
}

/**
 * Where to reset a build so that `stepId` runs again: just before its first attempt was
 * scheduled, or, for a step a part ran, just before that part was started (the whole part
 * runs again, its earlier steps too: a reset reaches only the build's own history).
 */
export function resetPointFor(history: History, stepId: string): Pick<StepSchedule, 'resetEventId'> | undefined {
  return stepSchedules(history).find((s) => s.stepId === stepId) ?? partStarts(history).find((p) => p.covers(stepId));
}
