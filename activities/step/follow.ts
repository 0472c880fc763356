// Follows a task to its end, the same for every runtime: its log from the offsets the step
// layer keeps (heartbeated, so a retried attempt resumes there), abort as SIGTERM then SIGKILL
// after the grace period, worker shutdown as a handover (the task keeps running).
import { setTimeout as delay } from 'node:timers/promises';
import { StepDetached } from '../errors';
import type { LogOffsets, LogPiece, TaskExit, TaskHandle } from '../runtime/types';

const POLL_MIN_MS = 10;
const POLL_MAX_MS = 250;
/** how long a finished step keeps trying to hand its last log lines to an unreachable NATS */
const FINAL_DRAIN_MS = 30_000;
/** how long a task may take to be gone after SIGKILL before the step stops waiting for it */
const KILL_WAIT_MS = 5_000;

export interface FollowOptions {
  /** offsets a previous attempt reached (its last heartbeat) */
  resume?: LogOffsets;
  /**
   * publishes a piece; resolves to how many bytes from its offset the log holds (an earlier
   * attempt's piece may be longer, and a step with credentials holds back an unfinished line:
   * 0 until its line ends). `final`: the task has ended, nothing follows.
   */
  publish(piece: LogPiece, final: boolean): Promise<number>;
  /** the offsets moved: heartbeat them */
  beat(offsets: LogOffsets): void;
  note(text: string): void;
  /** NATS is unreachable: the output waits in the runtime (files, the pod's log) */
  warn(message: string): void;
  abort: AbortSignal;
  detach: AbortSignal;
  killGraceMs: number;
  /** when the enclosing `timeout` expires (epoch ms): an abort after it is a timeout */
  deadline?: number;
}

/** The task's exit, or 'aborted' once an abort has stopped it; throws StepDetached when handed over. */
export async function followTask(handle: TaskHandle, opts: FollowOptions): Promise<TaskExit | 'aborted'> {
  // No heartbeat until the offsets move: the activity's keep-alive sends its details every second, and
  // a heartbeat at once cost every step a Temporal request (a trivial step never needs one).
  const offsets: LogOffsets = { ...opts.resume };
  const stopWaiting = new AbortController();
  let ended: { exit: TaskExit | undefined } | undefined;
  let failure: { err: unknown } | undefined;
  let wake: () => void = () => undefined;
  const waiting = handle.wait(stopWaiting.signal).then(
    (exit) => {
      ended = { exit };
      wake();
    },
    (err: unknown) => {
      failure = { err };
      wake();
    },
  );
  const onSignal = () => wake();
  opts.abort.addEventListener('abort', onSignal);
  opts.detach.addEventListener('abort', onSignal);
  const drain = async (final = false): Promise<boolean> => {
    let sent = false;
    for (;;) {
      let moved = false;
      for (const piece of await handle.readLogs(offsets)) {
        // After an earlier attempt's longer piece the rest of this read is stale: read again from there.
        if (piece.offset !== (offsets[piece.stream] ?? 0)) continue;
        const held = await opts.publish(piece, final);
        offsets[piece.stream] = piece.offset + held;
        if (held > 0) moved = true;
      }
      if (!moved) return sent;
      sent = true;
      opts.beat(offsets);
      // While the task runs, one read per poll: reading again at once sent what arrived during one
      // publish's round trip, a message (and a heartbeat) per few lines of a chatty task.
      if (!final) return sent;
    }
  };
  try {
    for (let pollMs = POLL_MIN_MS; ;) {
      if (failure) throw failure.err;
      if (ended?.exit) {
        await finalDrain(() => drain(true), opts);
        return ended.exit;
      }
      const sent = await drain().catch((err: unknown) => {
        opts.warn(`NATS unreachable; the step's output waits in the runtime: ${(err as Error).message}`);
        return false;
      });
      if (opts.detach.aborted) {
        // Not the build's cancellation (the worker going away, the attempt timed out): the task
        // keeps running, and the retried activity re-attaches to it. The reason is handedOver's.
        throw opts.detach.reason instanceof StepDetached
          ? opts.detach.reason
          : new StepDetached('the step keeps running and is handed over');
      }
      if (opts.abort.aborted) {
        await stop(handle, opts, () => ended !== undefined || failure !== undefined, waiting);
        await drain(true).catch(() => false);
        return 'aborted';
      }
      pollMs = sent ? POLL_MIN_MS : Math.min(POLL_MAX_MS, pollMs * 2);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, pollMs);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
        if (ended || failure || opts.abort.aborted || opts.detach.aborted) wake();
      });
    }
  } finally {
    stopWaiting.abort();
    opts.abort.removeEventListener('abort', onSignal);
    opts.detach.removeEventListener('abort', onSignal);
  }
}

/** SIGTERM, SIGKILL after the grace period, then the task's end (bounded: a task that will not go is left to the reconciler). */
async function stop(handle: TaskHandle, opts: FollowOptions, over: () => boolean, waiting: Promise<void>): Promise<void> {
  // The workflow's timer fired at `deadline` before it cancelled us: then this is the step's timeout.
  const why = opts.deadline !== undefined && Date.now() >= opts.deadline ? 'timeout exceeded' : 'aborted';
  opts.note(`${why}: sending SIGTERM, SIGKILL after ${opts.killGraceMs / 1000}s`);
  await handle.signal('SIGTERM');
  await within(waiting, opts.killGraceMs);
  if (over()) {
    opts.note('step stopped');
    return;
  }
  await handle.signal('SIGKILL');
  await within(waiting, KILL_WAIT_MS);
  opts.note('step killed (SIGKILL)');
}

async function finalDrain(drain: () => Promise<boolean>, opts: FollowOptions): Promise<void> {
  const deadline = Date.now() + FINAL_DRAIN_MS;
  for (;;) {
    try {
      await drain();
      return;
    } catch (err) {
      if (Date.now() > deadline) {
        opts.warn(`gave up sending the step's last output to NATS: ${(err as Error).message}`);
        return;
      }
      await delay(500);
    }
  }
}

/** Resolves when `p` settles or after `ms`, leaving no timer behind. */
async function within(p: Promise<void>, ms: number): Promise<void> {
  const timer = new AbortController();
  await Promise.race([p, delay(ms, undefined, { signal: timer.signal }).catch(() => undefined)]);
  timer.abort();
}
