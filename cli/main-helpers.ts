/** commander's accumulator for repeatable flags */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Sets the exit status without cutting off output still being written. */
export function exitWith(code: number): void {
  process.exitCode = code;
}
