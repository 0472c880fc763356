// Where a container step's time goes: the milliseconds of each phase of its path (prepare,
// create, start, exit) and of its removal after its result is out, logged at debug level with
// the wall-clock time each began, so bench:containerd-steps can put them beside the step's
// events and say what a container step costs beyond a host process.
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';

/** The message of the debug record a StepClock logs. */
export const PHASES_MESSAGE = 'container step phases';

export class StepClock {
  /** epoch ms when the clock started */
  readonly startedAt = Date.now();
  private last = performance.now();
  private readonly phases: Record<string, number> = {};

  /** The time since the previous mark (or the start) is `phase`'s; a phase marked twice adds up. */
  mark(phase: string): void {
    const now = performance.now();
    this.phases[phase] = (this.phases[phase] ?? 0) + now - this.last;
    this.last = now;
  }

  /** Logs the phases; `part` says which ('path': the step waited for them, 'removal': after its result). */
  log(log: Logger, part: 'path' | 'removal' | 'build end', id: string): void {
    if (!log.isLevelEnabled('debug')) return;
    const phases = Object.fromEntries(Object.entries(this.phases).map(([k, v]) => [k, Math.round(v * 100) / 100]));
    log.debug({ container: id, part, startedAt: this.startedAt, endedAt: Date.now(), phases }, PHASES_MESSAGE);
  }
}
