// Concourse's defaults for resource checks, in a file of their own so workflow code can read
// them without the pipeline compiler (which reads files).

/** Concourse's default `check_every`. */
export const DEFAULT_CHECK_EVERY_MS = 60_000;
/** Concourse's default `check_timeout`. */
export const DEFAULT_CHECK_TIMEOUT_MS = 60 * 60_000;
