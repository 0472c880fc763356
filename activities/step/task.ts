// The task step's activity, the same for every runtime: step events, the worker's running set,
// heartbeats, cancellation -> abort, worker shutdown -> handover, and the error edge. The runtime
// only finds or starts the task and waits for it (activities/runtime/types.ts).
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityDeps } from '../deps';
import { StepErrored, toFailure } from '../errors';
import type { Runtime, StepIo } from '../runtime/types';
import type { RunTaskRequest, RunTaskResult } from '../types';
import { CredentialResolver } from '../creds';
import { NO_CREDENTIALS } from '../deps';
import { mapInputs, resolveTaskConfig, withCredentials } from './task-config';

type Ending = { state: 'succeeded' | 'failed'; exitCode: number } | { state: 'errored'; message: string };

export async function runTask(deps: ActivityDeps, runtime: Runtime, req: RunTaskRequest): Promise<RunTaskResult> {
  const credentials = deps.credentials ?? NO_CREDENTIALS;
  // Resolved on every attempt, also one that re-attaches to a running task: its log still needs the values to redact.
  const creds = new CredentialResolver(credentials, req.plan, req.varSources);
  if (credentials.redact) for (const value of req.redact ?? []) creds.redactor.add(value);
  const unredact = deps.publisher.redactStep(req.buildId, req.step.id, creds.redactor);
  try {
    return await runResolvedTask(deps, runtime, req, creds);
  } catch (err) {
    throw redactFailure(err, creds);
  } finally {
    unredact();
  }
}

/** A failure's message without the step's credentials (Concourse redacts errors as it redacts logs). */
function redactFailure(err: unknown, creds: CredentialResolver): unknown {
  if (err instanceof Error) err.message = creds.redactMessage(err.message);
  return err;
}

async function runResolvedTask(deps: ActivityDeps, runtime: Runtime, req: RunTaskRequest, creds: CredentialResolver): Promise<RunTaskResult> {
  const ctx = Context.current();
  let { step } = req;
  const runName = `${req.runId}/${step.id}/${req.runKey}`;
  const event = { buildId: req.buildId, stepId: step.id, name: step.task, attempt: req.attempt };
  const finished = (ending: Ending) =>
    deps.publisher.event(
      {
        type: 'step-finished',
        ...event,
        time: new Date().toISOString(),
        ...(ending.state === 'errored' ? { ...ending, message: creds.redactMessage(ending.message) } : ending),
      },
      `${runName}/finished`,
    );

  const abort = new AbortController();
  const detach = new AbortController();
  ctx.cancelled.catch(() => (ctx.cancellationDetails?.workerShutdown ? detach.abort() : abort.abort()));
  // Heartbeat throughout, not only while the task runs: copying large inputs must not look like a dead worker.
  let details: unknown = ctx.info.heartbeatDetails;
  const keepAlive = setInterval(() => ctx.heartbeat(details), 1000);
  let notes = 0;
  const io: StepIo = {
    resume: ctx.info.heartbeatDetails,
    beat: (d) => {
      details = d;
      ctx.heartbeat(d);
    },
    note: (text) => {
      deps.log.info({ build: req.buildId, step: step.id }, text);
      void deps.publisher
        .log(req.buildId, step.id, 'causeway', Buffer.from(`${text}\n`), `${runName}/note/${ctx.info.attempt}.${notes++}`)
        .catch(() => undefined);
    },
  };
  const key = `${req.buildId}/${step.id}`;
  deps.running.add(key);
  // Not awaited before the task starts: publishes on one connection keep their order, so the
  // step's own events and logs still follow it. A retried attempt does not announce it again.
  const announced =
    ctx.info.attempt === 1
      ? deps.publisher.event({ type: 'step-started', ...event, time: new Date().toISOString() }, `${runName}/started`)
      : Promise.resolve();
  try {
    step = await withCredentials(step, creds);
    const resolvedStep = step;
    const handle = await runtime.findOrStartTask(
      {
        req: { ...req, step: resolvedStep },
        resolve: async () => {
          const config = await resolveTaskConfig(runtime, req.buildId, resolvedStep, req.artifacts, req.services, creds);
          return { config, inputs: mapInputs(resolvedStep, config, req.artifacts) };
        },
      },
      io,
    );
    await announced;
    const outcome = await handle.wait({ abort: abort.signal, detach: detach.signal });
    if (outcome.state === 'aborted') {
      await ctx.cancelled;
      throw new Error('unreachable: the task was aborted without a cancellation');
    }
    await finished({ state: outcome.state, exitCode: outcome.exitCode });
    return { exitCode: outcome.exitCode, outputs: outcome.outputs };
  } catch (err) {
    await announced;
    // Only a final error ends the step here; a retryable one will start it again.
    if (err instanceof StepErrored || (err instanceof ApplicationFailure && err.nonRetryable))
      await finished({ state: 'errored', message: err.message });
    throw toFailure(err);
  } finally {
    deps.running.delete(key);
    clearInterval(keepAlive);
  }
}
