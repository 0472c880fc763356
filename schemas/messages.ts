import { z } from 'zod';

// NATS subjects and message shapes. Step ids use only [A-Za-z0-9_.-], so a step id
// spans one or more subject tokens after `log.`.
export const BUILD_STREAM = 'CAUSEWAY_BUILDS';
export const BUILD_SUBJECTS = 'causeway.build.>';

/**
 * A build id as one subject token: a job's build id holds its pipeline's and job's names, which
 * may hold `.` (a token separator). `~` is in no name and no `build-<uuid>`, so ids stay distinct.
 */
const buildToken = (buildId: string) => buildId.replaceAll('.', '~');

export const subjects = {
  log: (buildId: string, stepId: string) => `causeway.build.${buildToken(buildId)}.log.${stepId}`,
  event: (buildId: string) => `causeway.build.${buildToken(buildId)}.event`,
  /** a service's output; the service name (letters, digits, _ -) is the last token */
  service: (buildId: string, scopeStepId: string, name: string) => `causeway.build.${buildToken(buildId)}.service.${scopeStepId}.${name}`,
  allOfBuild: (buildId: string) => `causeway.build.${buildToken(buildId)}.>`,
};

/** The step id a log subject carries, or undefined for other subjects. */
export function stepIdOfLogSubject(buildId: string, subject: string): string | undefined {
  const prefix = `causeway.build.${buildToken(buildId)}.log.`;
  return subject.startsWith(prefix) ? subject.slice(prefix.length) : undefined;
}

/** The owning step and service name a service log subject carries, or undefined for other subjects. */
export function serviceOfSubject(buildId: string, subject: string): { scopeStepId: string; name: string } | undefined {
  const prefix = `causeway.build.${buildToken(buildId)}.service.`;
  if (!subject.startsWith(prefix)) return undefined;
  const rest = subject.slice(prefix.length);
  const dot = rest.lastIndexOf('.');
  return dot > 0 ? { scopeStepId: rest.slice(0, dot), name: rest.slice(dot + 1) } : undefined;
}

/** Header naming which stream a log chunk came from; `causeway` marks the engine's own notes. */
export const LOG_STREAM_HEADER = 'Causeway-Stream';
/** On a redacted log message: how many bytes of the step's log it stands for (its data is shorter or longer). */
export const LOG_RAW_LENGTH_HEADER = 'Causeway-Raw-Length';
export const LogStreamName = z.enum(['stdout', 'stderr', 'causeway']);
export type LogStreamName = z.infer<typeof LogStreamName>;

export const BuildStatus = z.enum(['pending', 'started', 'succeeded', 'failed', 'errored', 'aborted']);
export type BuildStatus = z.infer<typeof BuildStatus>;

export const StepState = z.enum(['pending', 'running', 'succeeded', 'failed', 'errored', 'aborted', 'skipped']);
export type StepState = z.infer<typeof StepState>;

/** A service's life, as the status tree shows it. */
export const ServiceState = z.enum(['starting', 'probing', 'ready', 'stopping', 'stopped', 'failed']);
export type ServiceState = z.infer<typeof ServiceState>;

export const BuildEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('build-started'), buildId: z.string(), plan: z.string(), time: z.string() }),
  z.object({
    type: z.literal('build-finished'),
    buildId: z.string(),
    status: BuildStatus,
    time: z.string(),
    message: z.string().optional(),
  }),
  z.object({
    type: z.literal('step-started'),
    buildId: z.string(),
    stepId: z.string(),
    name: z.string(),
    attempt: z.number().int(),
    time: z.string(),
  }),
  z.object({
    type: z.literal('step-finished'),
    buildId: z.string(),
    stepId: z.string(),
    name: z.string(),
    attempt: z.number().int(),
    state: StepState,
    exitCode: z.number().int().optional(),
    message: z.string().optional(),
    time: z.string(),
  }),
]);
export type BuildEvent = z.infer<typeof BuildEvent>;
