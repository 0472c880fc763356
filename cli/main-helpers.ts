import { readEnv } from '../common/config';

/** Sets the exit status without cutting off output still being written. */
export function exitWith(code: number): void {
  process.exitCode = code;
}

/**
 * Whether the workers resolve ((vars)) that -v/-l do not give (a cluster-wide credential
 * manager): `--creds-from-worker`, or the manager configured in this environment, which the
 * embedded worker `causeway run` starts shares.
 */
export function credsFromWorker(opts: { credsFromWorker?: boolean }): boolean {
  const env = readEnv();
  return Boolean(opts.credsFromWorker || env.CAUSEWAY_CREDS || env.CAUSEWAY_CREDS_FILE);
}
