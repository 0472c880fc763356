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
