// Short labels for steps, used in logs and messages. Pure: workflow code imports it.
import type { Step, StepKind } from './compiled';

/** Every key that makes a map a Concourse step, in the order they are listed to users. */
export const STEP_KEYS = ['task', 'do', 'in_parallel', 'try', 'load_var', 'get', 'put', 'set_pipeline'] as const;
export type StepKey = (typeof STEP_KEYS)[number];

/** The kind of a compiled step, or of a raw YAML step by its step key; undefined when it has none. */
export function stepKindOf(step: Step): StepKind;
export function stepKindOf(step: unknown): StepKey | undefined;
export function stepKindOf(step: unknown): StepKey | undefined {
  if (typeof step !== 'object' || step === null) return undefined;
  const s = step as Record<string, unknown>;
  if (typeof s.kind === 'string' && typeof s.id === 'string') return s.kind as StepKind;
  return STEP_KEYS.find((k) => k in s);
}

/** "task build", "load_var version", "in_parallel", "do", "try". */
export function describeStep(step: Step): string {
  switch (step.kind) {
    case 'task':
      return `task ${step.task}`;
    case 'load_var':
      return `load_var ${step.var}`;
    case 'get':
      return `get ${step.name}`;
    case 'put':
      return `put ${step.name}`;
    case 'set_pipeline':
      return `set_pipeline ${step.pipeline}`;
    default:
      return step.kind;
  }
}
