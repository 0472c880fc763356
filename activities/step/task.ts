// The task step's activity, the same for every runtime: step events, the worker's running set,
// heartbeats, the build's cancellation -> abort, any other (worker shutdown, a timed-out attempt) -> handover, and the error edge. The runtime
// only finds or starts the task and waits for it (activities/runtime/types.ts).
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { logTail } from '../../common/build-log';
import { ACTIVITY_FAILURES } from '../../schemas/build';
import { MAX_LINE_WAIT, redactableLength } from '../../common/redact';
import { CredentialResolver, lookupPipeline, resolveResourceRequest, secretTexts } from '../creds';
import { NO_CREDENTIALS, type ActivityDeps } from '../deps';
import { handedOver, StepErrored, toFailure } from '../errors';
import type { LogOffsets, Runtime } from '../runtime/types';
import type { RunTaskRequest, RunTaskResult } from '../types';
import { followTask } from './follow';
import { mapInputs, resolveTaskConfig, withCredentials } from './task-config';

/** The variable a resource script's wrapper reads its request from (workflows/resource.ts). */
export const RESOURCE_REQUEST_ENV = 'CAUSEWAY_RESOURCE_REQUEST';

type Ending = { state: 'succeeded' | 'failed'; exitCode: number } | { state: 'errored'; message: string };

export async function runTask(deps: ActivityDeps, runtime: Runtime, req: RunTaskRequest): Promise<RunTaskResult> {
  const credentials = deps.credentials ?? NO_CREDENTIALS;
  // Resolved on every attempt, also one that re-attaches to a running task: its log still needs the values to redact.
  const creds = new CredentialResolver(credentials, lookupPipeline(req), req.varSources, req.buildId);
  if (credentials.redact) for (const value of req.redact ?? []) creds.redactor.add(value);
  try {
    return await runResolvedTask(deps, runtime, req, creds);
  } catch (err) {
    // Concourse redacts errors as it redacts logs.
    if (err instanceof Error) err.message = creds.redactMessage(err.message);
    throw err;
  }
}

async function runResolvedTask(
  deps: ActivityDeps,
  runtime: Runtime,
  req: RunTaskRequest,
  creds: CredentialResolver,
): Promise<RunTaskResult> {
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
  ctx.cancelled.catch(() => {
    const details = ctx.cancellationDetails;
    // An attempt the server gave up on (heartbeats late on a starved worker) follows its task to
    // the end, unanswered: its retry re-attaches to the same task, and this attempt keeps the
    // worker's slot the task uses (detached, the slot went to another step while it ran on).
    if (details?.timedOut || details?.notFound) return;
    const handover = handedOver(details);
    if (handover) detach.abort(handover);
    else abort.abort();
  });
  // Heartbeat throughout, not only while the task runs: copying large inputs must not look like a dead worker.
  let details: unknown = ctx.info.heartbeatDetails;
  const keepAlive = setInterval(() => ctx.heartbeat(details), 1000);
  let notes = 0;
  const note = (text: string) => {
    deps.log.info({ build: req.buildId, step: step.id }, text);
    void deps.publisher
      .log(
        req.buildId,
        step.id,
        'causeway',
        Buffer.from(`${creds.redactMessage(text)}\n`),
        `${runName}/note/${ctx.info.attempt}.${notes++}`,
      )
      .catch(() => undefined);
  };
  const key = `${req.buildId}/${step.id}`;
  deps.running.add(key);
  // Not awaited before the task starts: publishes on one connection keep their order, so the
  // step's own events and logs still follow it. A retried attempt does not announce it again.
  const announced =
    ctx.info.attempt === 1
      ? deps.publisher.event({ type: 'step-started', ...event, time: new Date().toISOString() }, `${runName}/started`)
      : Promise.resolve();
  let result: RunTaskResult;
  try {
    step = await withCredentials(step, creds);
    if (req.resource) {
      // Resolved in the parsed request, then made JSON: a value is never spliced into JSON text.
      const request = await resolveResourceRequest(creds, req.resource, req.resource.request);
      step = {
        ...step,
        config: step.config && { ...step.config, params: { ...step.config.params, [RESOURCE_REQUEST_ENV]: JSON.stringify(request) } },
      };
    }
    const resolvedStep = step;
    const handle = await runtime.findOrStartTask(
      {
        req: { ...req, step: resolvedStep },
        resolve: async () => {
          const config = await resolveTaskConfig(runtime, req.buildId, resolvedStep, req.artifacts, req.services, creds);
          return {
            config,
            inputs: mapInputs(resolvedStep, config, req.artifacts),
            secrets: [...creds.secretTexts(), ...secretTexts(req.redact ?? [])],
          };
        },
        firstAttempt: ctx.info.attempt === 1,
      },
      { note },
    );
    await announced;
    const outcome = await followTask(handle, {
      resume: ctx.info.heartbeatDetails as LogOffsets | undefined,
      // Message ids are byte offsets: a piece an earlier attempt sent is not sent twice.
      publish: (piece, final) => {
        const id = `${runName}/${piece.stream}/${piece.offset}`;
        const redactor = creds.redactor;
        if (redactor.empty) return deps.publisher.logPiece(req.buildId, step.id, piece.stream, piece.data, id);
        // Whole lines only, so a value split between two reads is still found.
        const n = redactableLength(piece.data, redactor, { final, full: piece.data.length >= MAX_LINE_WAIT });
        if (n === 0) return Promise.resolve(0);
        return deps.publisher.logPiece(req.buildId, step.id, piece.stream, redactor.bytes(piece.data.subarray(0, n)), id, n);
      },
      // The keep-alive sends them within a second: a heartbeat here encoded its details (the
      // payload codec) at every read. A retry resuming from offsets a second old sends nothing
      // twice (message ids are byte offsets).
      beat: (offsets) => {
        details = { ...offsets };
      },
      note,
      warn: (message) => deps.log.warn({ build: req.buildId, step: step.id }, message),
      abort: abort.signal,
      detach: detach.signal,
      killGraceMs: deps.killGraceMs,
      deadline: req.deadline,
    });
    if (outcome === 'aborted') {
      await ctx.cancelled;
      throw new Error('unreachable: the task was aborted without a cancellation');
    }
    const state = outcome.exitCode === 0 ? 'succeeded' : 'failed';
    // Not awaited (it never rejects): JetStream's ack would add a round trip to every step, and
    // what the build publishes next on this connection (the next step's events, finishBuild's
    // build-finished, which is awaited) still follows it.
    void finished({ state, exitCode: outcome.exitCode });
    result = outcome;
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
  if (result.exitCode === 0 || !req.failWhenTaskFails) return result;
  // Failing the activity (not retried) is what makes the Temporal UI draw the step red; the
  // workflow reads the result back from the details and the step ends failed, not errored.
  const tail = await logTail(deps.nc, req.buildId, step.id);
  throw ApplicationFailure.create({
    type: ACTIVITY_FAILURES.taskFailed,
    message: `task ${step.task} (${step.id}) failed with exit code ${result.exitCode}${tail ? `; the last lines of its log:\n${tail}` : ''}`,
    nonRetryable: true,
    details: [result],
  });
}
