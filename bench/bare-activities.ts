// The floor for benchmark (b): an activity that does nothing and returns at once.
export async function noop(): Promise<void> {
  // intentionally empty
}
