// The step layer's errors, in one style for every runtime: runtimes and the step layer throw
// these domain errors, and toFailure (the one edge) makes Temporal failures of them.
import { ApplicationFailure, type ActivityCancellationDetails } from '@temporalio/common';
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

/** The attempt let go of its step (see handedOver): the step keeps running, and the retried activity re-attaches to it. */
export class StepDetached extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StepDetached';
  }
}

/**
 * Why a cancelled attempt lets go of its step instead of stopping it, or undefined when the
 * build asked (an abort, a step's timeout: the workflow's request, or an operator's reset). An
 * attempt the server timed out (its heartbeats came late on a starved worker) or no longer knows
 * must not kill the step its retry re-attaches to: that once errored builds with "ended without
 * an exit status". What ended builds leave, the reconciler removes.
 */
export function handedOver(details: ActivityCancellationDetails | undefined): StepDetached | undefined {
  if (!details || details.cancelRequested || details.reset) return undefined;
  if (details.workerShutdown) return new StepDetached('worker shut down; the step keeps running and is handed over');
  if (details.timedOut || details.notFound)
    return new StepDetached('the server timed this attempt out (or its build ended); the step keeps running for the retry');
  if (details.paused) return new StepDetached('the activity was paused; the step keeps running and is re-attached once unpaused');
  return undefined;
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
