import type { BuildOutcome } from '../common/build-client';

// Apart from the commands that use them, as help texts state them (cli/specs/).

/** CLI exit codes, as fly's: 0 succeeded, 1 failed, 2 errored, 3 aborted. */
export const EXIT_CODES: Record<BuildOutcome['status'], number> = { succeeded: 0, failed: 1, errored: 2, aborted: 3 };
/** `causeway watch --no-follow` on a build that has not ended. */
export const EXIT_STILL_RUNNING = 4;
