// Limits of the client commands, apart from them because their help texts state them (cli/specs/).

/** A running build's `status` query is answered by a worker; past this, say why none did. */
export const QUERY_DEADLINE_MS = 5000;
/** Steps `causeway status` lists by default; beyond, counts by state and the steps that did not succeed. */
export const STEPS_LISTED = 200;
