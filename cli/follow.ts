import { setTimeout as delay } from 'node:timers/promises';
import type { WorkflowHandle } from '@temporalio/client';
import { awaitBuild, startBuild, type BuildOutcome } from '../common/build-client';
import { EXIT_CODES } from './exit-codes';
import { lastSequenceOfBuild, readBuild } from '../common/build-log';
import type { CompiledPlan } from '../schemas/compiled';
import { buildUrl, stepTreeUrl, type Session } from './connect';
import { paint, printJson, say } from './output';
import { BuildRenderer, renderOutcome, renderServiceTails } from './render';

/** How long the log may stop arriving, once the build has ended, before we stop waiting for the rest. */
const LOG_STALL_MS = 30_000;
/** How often a log still being read after the build's end is checked for progress. */
const LOG_CHECK_MS = 1000;
/** How often a followed build is checked for waiting on a worker. */
const WAITING_CHECK_MS = 3000;

export interface SubmitOptions {
  plan: CompiledPlan;
  buildId: string;
  inputs: Record<string, string>;
  outputs: Record<string, string>;
  detach: boolean;
  /** with detach: print {buildId, plan, url} as JSON instead of the id */
  json?: boolean;
  /** interleave services' output with the steps' (default: yes) */
  showServices?: boolean;
  /** upload a git work tree's ignored files too */
  includeIgnored?: boolean;
}

/** Uploads inputs, starts the build, streams its log, downloads outputs; resolves to the CLI's exit code. */
export async function submitAndFollow(session: Session, opts: SubmitOptions): Promise<number> {
  // The artifact store (tar, the object store) and the worker registry load only when used:
  // a one-step build's time is mostly the CLI's start-up (BENCHMARKS.md, "One-step build latency").
  const transfer =
    Object.keys({ ...opts.inputs, ...opts.outputs }).length > 0 ? (require('./transfer') as typeof import('./transfer')) : undefined;
  await transfer?.uploadInputs(session.nc, opts.buildId, opts.inputs, { includeIgnored: opts.includeIgnored ?? false });
  const handle = await startBuild(session.client, {
    plan: opts.plan,
    taskQueue: session.taskQueue,
    buildId: opts.buildId,
    uploads: Object.keys(opts.inputs),
    downloads: Object.keys(opts.outputs),
  });
  const url = buildUrl(session, opts.buildId);
  say(`${paint('bold', `build ${opts.buildId}`)} started: plan ${opts.plan.name}`);
  if (url) say(`  watch it in the Temporal UI: ${url}`);
  const tree = stepTreeUrl(session, opts.buildId, handle.firstExecutionRunId);
  if (tree) say(`  its step tree there: ${tree}`);
  if (opts.detach) {
    say(`  follow it with: causeway watch ${opts.buildId}`);
    // The id alone on stdout, so `B=$(causeway run plan.yml --detach)` captures it.
    if (opts.json) printJson({ buildId: opts.buildId, plan: opts.plan.name, url: url ?? null });
    else process.stdout.write(`${opts.buildId}\n`);
    return 0;
  }
  const started = Date.now();
  const outcome = await followUntilDone(session, handle, { abortOnInterrupt: true, showServices: opts.showServices });
  await transfer?.downloadOutputs(session.nc, opts.buildId, opts.outputs);
  console.log(renderOutcome(opts.buildId, outcome, Date.now() - started, url));
  return EXIT_CODES[outcome.status];
}

/**
 * Streams a build's log until the build ends. With `abortOnInterrupt`, the first Ctrl-C or
 * SIGTERM aborts the build (as `fly execute` does) and the second leaves it running.
 */
export async function followUntilDone(
  session: Session,
  handle: WorkflowHandle,
  opts: { abortOnInterrupt: boolean; showSteps?: (stepId: string) => boolean; since?: Date; showServices?: boolean; timestamps?: boolean },
): Promise<BuildOutcome> {
  const renderer = new BuildRenderer(process.stdout, {
    showSteps: opts.showSteps ?? (() => true),
    showServices: opts.showServices ?? true,
    timestamps: opts.timestamps,
  });
  let interrupts = 0;
  /** the build has ended: what is left is printing the rest of its log, which Ctrl-C just stops */
  let ended = false;
  const onInterrupt = () => {
    interrupts += 1;
    if (ended) {
      say(`\nstopped printing the log of build ${handle.workflowId}, which has ended; all of it: causeway watch ${handle.workflowId}`);
      process.exit(130);
    }
    if (!opts.abortOnInterrupt || interrupts > 1) {
      say(`\nleft build ${handle.workflowId} running; follow it with: causeway watch ${handle.workflowId}`);
      process.exit(130);
    }
    say('\naborting the build (Ctrl-C again to leave it running)...');
    void handle.cancel();
  };
  // SIGTERM (a CI runner or process manager stopping us) aborts like Ctrl-C, as fly does.
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', onInterrupt);
  try {
    let setEnd: (seq: number) => void = () => undefined;
    const end = new Promise<number>((resolve) => (setEnd = resolve));
    let records = 0;
    // A log that cannot be read must not end the CLI while the build runs on: say so and wait for the outcome.
    const logs = (async () => {
      for await (const record of readBuild(session.nc, handle.workflowId, { follow: true, since: opts.since, end })) {
        renderer.write(record);
        records++;
      }
    })().catch((err: Error) =>
      say(`cannot read the build's log from NATS (${err.message}); it goes on: causeway watch ${handle.workflowId}`),
    );
    const done = new AbortController();
    const waiting = reportWaiting(session, handle, done.signal);
    const outcome = await awaitBuild(handle);
    ended = true;
    done.abort();
    await waiting;
    await readToEnd(session, handle.workflowId, logs, setEnd, () => records);
    // A failed build's services often say why (a crashed database, a refused login): show their last lines unasked.
    const tails = outcome.status === 'succeeded' ? '' : renderServiceTails(renderer.serviceTails());
    if (tails) console.log(tails);
    return outcome;
  } finally {
    process.off('SIGINT', onInterrupt);
    process.off('SIGTERM', onInterrupt);
  }
}

/**
 * Once the build has ended, waits until its log is printed up to the last message JetStream holds
 * for it (every line a step wrote was acknowledged before the step ended), however far behind the
 * reader is: a fixed grace period here cut large logs short at load. Gives up, saying so, only
 * when nothing arrives for LOG_STALL_MS (NATS unreachable).
 */
async function readToEnd(
  session: Session,
  buildId: string,
  logs: Promise<void>,
  setEnd: (seq: number) => void,
  records: () => number,
): Promise<void> {
  let read = false;
  void logs.then(() => (read = true));
  let known = false;
  let seen = records();
  let movedAt = Date.now();
  while (!read) {
    if (!known) {
      known = await lastSequenceOfBuild(session.nc, buildId).then(
        (seq) => (setEnd(seq), true),
        () => false, // NATS unreachable: asked again while the stall allows
      );
    }
    const tick = new AbortController();
    await Promise.race([logs, delay(LOG_CHECK_MS, undefined, { signal: tick.signal }).catch(() => undefined)]);
    tick.abort();
    if (records() !== seen) {
      seen = records();
      movedAt = Date.now();
    } else if (!read && Date.now() - movedAt > LOG_STALL_MS) {
      say(
        `the build's log stopped arriving from NATS for ${LOG_STALL_MS / 1000}s, so its end may be missing above; see all of it later with: causeway watch ${buildId}`,
      );
      return;
    }
  }
}

/** Says on stderr when the build waits for a worker and why, and when a worker has it again. */
async function reportWaiting(session: Session, handle: WorkflowHandle, signal: AbortSignal): Promise<void> {
  let said: string | undefined;
  let previous: string | undefined;
  while (!signal.aborted) {
    try {
      await delay(WAITING_CHECK_MS, undefined, { signal });
    } catch {
      return; // the build ended
    }
    const { whyWaiting } = require('./waiting') as typeof import('./waiting');
    const why = await whyWaiting(session, handle).catch(() => undefined);
    if (signal.aborted) return;
    // Seen twice in a row: a step scheduled a moment ago is not yet waiting.
    if (why && why.reason === previous && why.reason !== said) {
      say(`${paint('yellow', why.reason)}\n  ${why.fix}`);
      said = why.reason;
    } else if (!why && said) {
      say('a worker has the build again');
      said = undefined;
    }
    previous = why?.reason;
  }
}
