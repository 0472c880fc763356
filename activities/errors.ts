// The step layer's errors, in one style for every runtime: runtimes and the step layer throw
// these domain errors, and toFailure (the one edge) makes Temporal failures of them.
import { ApplicationFailure } from '@temporalio/common';
import { ACTIVITY_FAILURES } from '../schemas/build';

/**
 * The step cannot run, or ended abnormally (a bad task config, a missing input, an image that
 * cannot be pulled): it ends errored and no retry can fix it. `reason`: a short cause a machine
 * can read (Kubernetes' reason, ...).
 */
export class StepErrored extends Error {
  constructor(
    message: string,
    readonly reason?: string,
  ) {
    super(message);
    this.name = 'StepErrored';
  }
}

/** The worker is shutting down: the step keeps running, and the retried activity on the next worker re-attaches to it. */
export class StepDetached extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StepDetached';
  }
}

/** A service that cannot start or become ready: its step fails and the workflow does not retry it. */
export class ServiceFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ServiceFailed';
  }
}

/** The one place a domain error becomes a Temporal failure; anything else stays retryable as it is. */
export function toFailure(err: unknown): unknown {
  if (err instanceof StepErrored) {
    return ApplicationFailure.create({
      type: ACTIVITY_FAILURES.stepErrored,
      message: err.message,
      nonRetryable: true,
      details: err.reason ? [{ reason: err.reason }] : undefined,
    });
  }
  if (err instanceof ServiceFailed)
    return ApplicationFailure.create({ type: ACTIVITY_FAILURES.serviceFailed, message: err.message, nonRetryable: true });
  if (err instanceof StepDetached) return ApplicationFailure.create({ type: ACTIVITY_FAILURES.workerShutdown, message: err.message });
  return err;
}

/** Runs an activity's work and translates what it throws at the edge. */
export async function atEdge<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw toFailure(err);
  }
}
