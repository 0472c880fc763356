import { CliError } from '../output';

// What every command definition shares. Definitions load only commander, this file, cli/output.ts
// (CliError, for flag parsers) and constants (cli/limits.ts, cli/exit-codes.ts), none of which
// loads more than node:util, so `causeway CMD --help` loads what it describes and nothing else
// (BENCHMARKS.md, "CLI start-up").

/** An action whose implementation module is loaded only when the command runs. */
export function lazy<A extends unknown[]>(load: () => (...args: A) => unknown): (...args: A) => Promise<void> {
  return async (...args) => {
    await load()(...args);
  };
}

/** commander's accumulator for repeatable flags */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** commander's parser for a count flag: a positive whole number, or a CliError naming the flag. */
export function positiveCount(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new CliError(`${flag} takes a positive whole number, got ${value}`);
    return n;
  };
}

/**
 * fly's `--team NAME`, as a parser: Causeway serves one team, its workers' (`worker --team`,
 * CAUSEWAY_CREDS_TEAM, else main), so that team is accepted and any other refused while the
 * command line is parsed, before the command does anything.
 */
export function oneTeam(value: string): string {
  const team = process.env.CAUSEWAY_CREDS_TEAM || 'main';
  if (value === team) return value;
  throw new CliError(
    `--team ${value}: this Causeway serves one team, ${team} (CAUSEWAY_CREDS_TEAM, else main: the team its workers look credentials up under)`,
    `drop --team, or give --team ${team}; if the workers run with another --team, set CAUSEWAY_CREDS_TEAM to it here too`,
  );
}

/** fly's help for --team, said of what the command addresses. */
export const teamHelp = (what: string) => `fly's team of ${what}: only this Causeway's team is accepted (CAUSEWAY_CREDS_TEAM, else main)`;
