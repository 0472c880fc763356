// What a credential manager is to the step layer, as Concourse's creds.Secrets: the paths a
// var is looked up under, in order, and one lookup.
export type SecretLookup = { found: true; value: unknown } | { found: false };

export interface SecretStore {
  /** what to call it in messages: `vault https://vault:8200`, `kubernetes`, ... */
  readonly describe: string;
  /** candidate paths of var `name` for a build of `pipeline` in `team`, first match wins */
  lookupPaths(team: string, pipeline: string, name: string): string[];
  get(path: string): Promise<SecretLookup>;
  /** values given out before that a step may still show (a store whose every lookup makes a new value): redacted with each value found */
  earlier?(): unknown[];
}

/** A Secret's or a KV entry's data: its `value` key is the var, else the whole map is (Concourse). */
export function valueOf(data: Record<string, unknown>): unknown {
  return Object.prototype.hasOwnProperty.call(data, 'value') ? data.value : data;
}
