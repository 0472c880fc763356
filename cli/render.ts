import type { BuildRecord } from '../common/build-log';
import type { BuildEvent } from '../schemas/messages';
import type { BuildOutcome } from '../common/build-client';
import { STATE_MARKS, type StepStatus } from '../schemas/build';
import { formatDuration, paint } from './output';

/** How many of a service's last lines a failed build shows. */
const SERVICE_TAIL_LINES = 15;

export interface ServiceTail {
  scopeStepId: string;
  name: string;
  lines: string[];
}

/**
 * Prints a build's records as a terminal user reads them: a header whenever the
 * output switches to another step, the step's bytes as they came, the engine's notes
 * dimmed, and a line when each step ends. Service output is interleaved line by line
 * with a `[svc NAME]` prefix (unless `showServices` is off); the last lines of every
 * service are kept for a failed build's summary either way.
 */
export class BuildRenderer {
  private current: string | undefined;
  private atLineStart = true;
  private readonly names = new Map<string, string>();
  private readonly services = new Map<string, ServiceTail & { partial: string }>();
  /** what each line of the record being written starts with: its local time with `timestamps` (fly's `watch -t`), else nothing */
  private stamp = '';

  constructor(
    private readonly out: NodeJS.WritableStream = process.stdout,
    private readonly opts: { showSteps: (stepId: string) => boolean; showServices?: boolean; timestamps?: boolean } = {
      showSteps: () => true,
    },
  ) {}

  write(record: BuildRecord): void {
    if (this.opts.timestamps) this.stamp = `${record.time.toTimeString().slice(0, 8)}  `;
    if (record.kind === 'event') return this.event(record.event);
    if (record.kind === 'service') return this.service(record);
    if (!this.opts.showSteps(record.stepId)) return;
    this.switchTo(record.stepId);
    const text = Buffer.from(record.data).toString('utf8');
    if (record.stream === 'causeway') {
      this.line(paint('dim', `causeway: ${text.trimEnd()}`));
      return;
    }
    if (this.stamp) this.out.write((this.atLineStart ? this.stamp : '') + text.replace(/\n(?!$)/g, `\n${this.stamp}`));
    else this.out.write(record.data);
    this.atLineStart = text.endsWith('\n');
  }

  /** The last lines of every service seen, in the order they first spoke. */
  serviceTails(): ServiceTail[] {
    return [...this.services.values()].map(({ scopeStepId, name, lines, partial }) => ({
      scopeStepId,
      name,
      lines: partial ? [...lines, partial].slice(-SERVICE_TAIL_LINES) : lines,
    }));
  }

  private service(record: Extract<BuildRecord, { kind: 'service' }>): void {
    const key = `${record.scopeStepId}/${record.name}`;
    let svc = this.services.get(key);
    if (!svc) {
      svc = { scopeStepId: record.scopeStepId, name: record.name, lines: [], partial: '' };
      this.services.set(key, svc);
    }
    const text = Buffer.from(record.data).toString('utf8');
    // Notes are whole lines of their own; a service's output may end mid-line, kept until its newline comes.
    const lines =
      record.stream === 'causeway'
        ? text
            .trimEnd()
            .split('\n')
            .map((l) => `causeway: ${l}`)
        : (svc.partial + text).split('\n');
    if (record.stream !== 'causeway') svc.partial = lines.pop() ?? '';
    svc.lines = [...svc.lines, ...lines].slice(-SERVICE_TAIL_LINES);
    if (this.opts.showServices === false) return;
    const prefix = paint('magenta', `[svc ${record.name}]`);
    for (const l of lines) this.line(`${prefix} ${record.stream === 'causeway' ? paint('dim', l) : l}`);
    // The next step output gets its header again, so it is not mistaken for the service's.
    if (lines.length > 0) this.current = undefined;
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
    this.out.write(`${this.stamp}${text}\n`);
    this.atLineStart = true;
  }
}

/** The closing lines of a build: its status, duration, and what went wrong where. */
export function renderOutcome(buildId: string, outcome: BuildOutcome, elapsedMs: number, url?: string): string {
  const colors = { succeeded: 'green', failed: 'red', errored: 'yellow', aborted: 'magenta' } as const;
  const lines = [paint(['bold', colors[outcome.status]], `build ${buildId} ${outcome.status}`) + ` in ${formatDuration(elapsedMs)}`];
  const all = outcome.summary?.steps.filter((s) => s.state === 'errored' || s.state === 'failed' || s.state === 'aborted') ?? [];
  // The steps that went wrong themselves, not the do/in_parallel around them.
  const leaves = all.filter((s) => !all.some((other) => other.parent === s.id));
  for (const s of leaves) {
    const detail = s.message ?? (s.exitCode !== undefined ? `exit ${s.exitCode}` : '');
    lines.push(`  ${STATE_MARKS[s.state]} ${label(s)} [${s.id}] ${s.state}${detail ? `: ${detail}` : ''}`);
  }
  const troubled = leaves;
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
      if (s.service) {
        const detail = [s.service.address ?? '', s.message ?? ''].filter(Boolean).join(', ');
        return `${'  '.repeat(depth(s))}${STATE_MARKS[s.state]} service ${s.name} ${paint('dim', s.id)} ${s.service.state}${detail ? ` (${detail})` : ''}`;
      }
      return `${'  '.repeat(depth(s))}${STATE_MARKS[s.state]} ${label(s)} ${paint('dim', s.id)} ${s.state}${extra ? ` (${extra})` : ''}`;
    })
    .join('\n');
}

/** A big build's steps: how many are in each state, then those that did not succeed (at most `limit`). */
export function renderStepCounts(steps: StepStatus[], limit: number): string {
  const counts = new Map<string, number>();
  for (const s of steps) counts.set(s.state, (counts.get(s.state) ?? 0) + 1);
  const notable = steps.filter((s) => !['succeeded', 'skipped', 'pending'].includes(s.state) && s.kind === 'task');
  const lines = [
    `${steps.length} steps: ${[...counts].map(([state, n]) => `${n} ${state}`).join(', ')}`,
    ...notable
      .slice(0, limit)
      .map(
        (s) =>
          `${STATE_MARKS[s.state]} ${label(s)} ${paint('dim', s.id)} ${s.state}${s.exitCode !== undefined ? ` (exit ${s.exitCode})` : ''}`,
      ),
  ];
  if (notable.length > limit) lines.push(`… ${notable.length - limit} more`);
  lines.push(paint('dim', 'every step: causeway status --all BUILD'));
  return lines.join('\n');
}

/** A failed build's services' last lines, shown without being asked for. */
export function renderServiceTails(tails: ServiceTail[]): string {
  return tails
    .filter((t) => t.lines.length > 0)
    .map((t) => [paint('bold', `last lines of service ${t.name} [${t.scopeStepId}]:`), ...t.lines.map((l) => `  ${l}`)].join('\n'))
    .join('\n');
}

function label(s: StepStatus): string {
  return s.kind === s.name ? s.kind : `${s.kind} ${s.name}`;
}
