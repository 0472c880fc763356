// The Concourse resource protocol as a process, for a resource type's script run as a task (a
// get's or put's in a build, workflows/resource.ts; a pipeline's check of an image type,
// activities/image-check.ts): the request JSON on stdin, the response JSON on stdout (kept in a
// file), stderr as the step's log; `in`/`out` get their directory as $1. `$0` is the script, so
// its path needs no quoting inside the command string.

/** The artifact a resource script's stdout (its JSON response) is written to; never joins the build's scope. */
export const RESOURCE_RESPONSE = 'causeway-resource-response';
export const RESOURCE_RESPONSE_FILE = `${RESOURCE_RESPONSE}/response.json`;

export const RESOURCE_WRAPPERS = {
  check: `printf '%s' "$CAUSEWAY_RESOURCE_REQUEST" | "$0" > ${RESOURCE_RESPONSE_FILE}`,
  in: `printf '%s' "$CAUSEWAY_RESOURCE_REQUEST" | "$0" "$PWD/$1" > ${RESOURCE_RESPONSE_FILE} && printf 'fetched: %s\\n' "$(cat ${RESOURCE_RESPONSE_FILE})" >&2`,
  out: `printf '%s' "$CAUSEWAY_RESOURCE_REQUEST" | "$0" "$PWD" > ${RESOURCE_RESPONSE_FILE} && printf 'put: %s\\n' "$(cat ${RESOURCE_RESPONSE_FILE})" >&2`,
} as const;

export type ResourceScript = keyof typeof RESOURCE_WRAPPERS;
