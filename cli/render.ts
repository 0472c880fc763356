import type { BuildRecord } from '../common/build-log';
import type { BuildEvent } from '../schemas/messages';
import type { BuildOutcome } from '../common/build-client';
import type { StepStatus } from '../workflows/types';
import { formatDuration, paint } from './output';

/**
 * Prints a build's records as a terminal user reads them: a header whenever the
 * output switches to another step, the step's bytes as they came, the engine's notes
 * dimmed, and a line when each step ends.
 */
export class BuildRenderer {
  private current: string | undefined;
  private atLineStart = true;
  private readonly names = new Map<string, string>();

  constructor(
    private readonly out: NodeJS.WritableStream = process.stdout,
    private readonly opts: { showSteps: (stepId: string) => boolean } = { showSteps: () => true },
  ) {}

  write(record: BuildRecord): void {
    if (record.kind === 'event') return this.event(record.event);
    if (!this.opts.showSteps(record.stepId)) return;
    this.switchTo(record.stepId);
    const text = Buffer.from(record.data).toString('utf8');
    if (record.stream === 'causeway') {
      this.line(paint('dim', `causeway: ${text.trimEnd()}`));
      return;
    }
    this.out.write(record.data);
    this.atLineStart = text.endsWith('\n');
  }

  private event(e: BuildEvent): void {
    switch (e.type) {
      case 'step-started':
        // The header waits for the step's first output, so parallel steps that print
        // nothing do not leave a trail of empty headers.
        this.names.set(e.stepId, e.attempt > 1 ? `${e.name} (attempt ${e.attempt})` : e.name);
        if (this.current === e.stepId) this.current = undefined;
        return;
      case 'step-finished': {
        const ok = e.state === 'succeeded';
        const mark = ok ? paint('green', '✔') : paint('red', '✘');
        this.line(`${mark} ${e.name} ${e.state}${e.exitCode !== undefined && !ok ? ` (exit ${e.exitCode})` : ''}`);
        this.current = undefined;
        return;
      }
      default:
        return;
    }
  }

  private switchTo(stepId: string): void {
    if (this.current === stepId) return;
    this.current = stepId;
    const name = this.names.get(stepId);
    this.line(paint('cyan', `── ${name ? `${name} ` : ''}${paint('dim', `[${stepId}]`)} ──`));
  }

  private line(text: string): void {
    if (!this.atLineStart) this.out.write('\n');
    this.out.write(`${text}\n`);
    this.atLineStart = true;
  }
}

const STATE_MARK: Record<StepStatus['state'], string> = {
  pending: '○',
  running: '◐',
  succeeded: '✔',
  failed: '✘',
  errored: '⚠',
  aborted: '■',
  skipped: '–',
};

/** The closing lines of a build: its status, duration, and what went wrong where. */
export function renderOutcome(buildId: string, outcome: BuildOutcome, elapsedMs: number, url?: string): string {
  const colors = { succeeded: 'green', failed: 'red', errored: 'yellow', aborted: 'magenta' } as const;
  const lines = [paint(['bold', colors[outcome.status]], `build ${buildId} ${outcome.status}`) + ` in ${formatDuration(elapsedMs)}`];
  const troubled = outcome.summary?.steps.filter((s) => s.state === 'errored' || s.state === 'failed' || s.state === 'aborted') ?? [];
  for (const s of troubled) {
    const detail = s.message ?? (s.exitCode !== undefined ? `exit ${s.exitCode}` : '');
    lines.push(`  ${STATE_MARK[s.state]} ${s.kind} ${s.name} [${s.id}] ${s.state}${detail ? `: ${detail}` : ''}`);
  }
  if (troubled.length === 0 && outcome.status !== 'succeeded' && outcome.message) lines.push(`  ${outcome.message}`);
  if (url) lines.push(`  ${paint('dim', url)}`);
  return lines.join('\n');
}

/** The step tree of a `status` query, indented by nesting. */
export function renderSteps(steps: StepStatus[]): string {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const depth = (s: StepStatus): number => {
    const parent = s.parent === undefined ? undefined : byId.get(s.parent);
    return parent ? depth(parent) + 1 : 0;
  };
  return steps
    .map((s) => {
      const extra = [s.attempts > 1 ? `attempt ${s.attempts}` : '', s.exitCode !== undefined ? `exit ${s.exitCode}` : '', s.message ?? '']
        .filter(Boolean)
        .join(', ');
      return `${'  '.repeat(depth(s))}${STATE_MARK[s.state]} ${s.kind === 'task' || s.kind === 'load_var' ? `${s.kind} ${s.name}` : s.kind} ${paint('dim', s.id)} ${s.state}${extra ? ` (${extra})` : ''}`;
    })
    .join('\n');
}
