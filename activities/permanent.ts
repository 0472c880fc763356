import { ApplicationFailure } from '@temporalio/common';
import { STEP_CONFIG_ERROR } from './deps';
import { PathEscapeError } from './safe-path';

/**
 * errno codes that no retry of the same step can change, because the plan caused them: a name
 * longer than a file name (ENAMETOOLONG), an environment larger than a process takes (E2BIG),
 * a symlink loop the step's own files make (ELOOP). Retried, they cost 78-117 s of backoff.
 */
const PERMANENT_CODES = new Set(['ENAMETOOLONG', 'E2BIG', 'ELOOP']);

/** `err` as a non-retryable step failure naming its cause when no retry can fix it; else `err` unchanged. */
export function asPermanent(err: unknown, where: string): unknown {
  // Duck-typed: Node's own errors (fs, spawn) are not `instanceof Error` inside a vm context such as jest's.
  if (err instanceof ApplicationFailure || typeof err !== 'object' || err === null || typeof (err as Error).message !== 'string')
    return err;
  const { message, code: given } = err as NodeJS.ErrnoException;
  // The process helper (local/spawner.ts) passes a spawn error's message only: "spawn /bin/sh E2BIG".
  const code = given ?? /\b(E[A-Z0-9]+)$/.exec(message)?.[1];
  if (!(err instanceof PathEscapeError) && !(code && PERMANENT_CODES.has(code))) return err;
  return ApplicationFailure.create({ type: STEP_CONFIG_ERROR, message: `${where}: ${message}`, nonRetryable: true });
}
