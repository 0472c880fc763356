import { setTimeout as delay } from 'node:timers/promises';

/** How long the CLI keeps trying to reach Temporal or NATS before it gives up. */
export const CONNECT_PATIENCE_MS = 60_000;
/**
 * A worker waits longer: it is started by a supervisor, often with or before the servers, and a
 * worker started while Temporal restarts exited at once and stayed down (pipeline-chaos test).
 */
export const WORKER_CONNECT_PATIENCE_MS = 5 * 60_000;
const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 4000;

/**
 * Retries `connect` with exponential backoff until `patienceMs` has passed, saying what it waits
 * for. A server that is busy (50 CLIs connecting at once), starting or restarting answers late,
 * not never: one 5 s attempt turned that into "cannot reach Temporal" for 8 of 50.
 */
export async function retryConnect<T>(
  what: string,
  connect: () => Promise<T>,
  say: (line: string) => void,
  patienceMs = CONNECT_PATIENCE_MS,
): Promise<T> {
  const deadline = Date.now() + patienceMs;
  for (let backoff = FIRST_BACKOFF_MS; ; backoff = Math.min(MAX_BACKOFF_MS, backoff * 2)) {
    try {
      return await connect();
    } catch (err) {
      // Jitter, so CLIs started together do not retry together.
      const wait = Math.round(backoff * (0.5 + Math.random()));
      if (Date.now() + wait > deadline) throw err;
      say(`waiting for ${what}: ${String((err as Error).message).split('\n')[0]}; retrying in ${(wait / 1000).toFixed(1)} s`);
      await delay(wait);
    }
  }
}
