// Names of pipelines, jobs and resources: checked by the pipeline compiler and by set_pipeline steps.

/**
 * Pipeline and job names become part of build workflow ids (`build-P:J:N`), NATS subjects and
 * directory names, so they are limited to what is safe in all three. `.` is allowed, as
 * Concourse allows it (`golang-1.20` in its examples); a build id's dots are escaped in NATS
 * subjects (schemas/messages.ts).
 */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
export const NAME_RULE = 'letters, digits, `-`, `_` and `.`, starting with a letter or digit';

export function checkName(what: string, name: string): string | undefined {
  return NAME_PATTERN.test(name) ? undefined : `${what} name \`${name}\` is not allowed: use ${NAME_RULE}`;
}
