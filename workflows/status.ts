import { setCurrentDetails, workflowInfo } from '@temporalio/workflow';
import type { ResourceVersion, Step } from '../schemas/compiled';
import { interpolateLocal } from '../schemas/interpolate';
import type { ServiceState, StepState } from '../schemas/messages';
import { STATE_MARKS, type PartRef, type StepStatus } from '../schemas/build';

export function stepName(step: Step, locals: Record<string, unknown> = {}): string {
  switch (step.kind) {
    case 'task':
      return nameWith(step.task, locals);
    case 'load_var':
      return step.var;
    case 'get':
    case 'put':
      return step.name;
    case 'set_pipeline':
      return nameWith(step.pipeline, locals);
    default:
      return step.kind;
  }
}

/** Steps the Temporal UI's details list one by one; a bigger tree is summarised. */
const DETAILED_STEPS = 200;
/** Running or failed steps a summarised tree still names. */
const NOTABLE_STEPS = 20;

/** A name with the across vars in scope filled in, as Concourse shows `task: test-((.:go))`; unresolved refs stay as text. */
function nameWith(name: string, locals: Record<string, unknown>): string {
  try {
    return interpolateLocal(name, locals);
  } catch {
    return name;
  }
}

/** The step tree the `status` query returns and the Temporal UI shows as current details. */
export class StatusTracker {
  private readonly steps = new Map<string, StepStatus>();
  private readonly partRefs = new Map<string, PartRef>();
  /** the waiting notes shown now, by step */
  private readonly waitingNotes = new Map<string, string>();

  constructor(private readonly plan: string) {}

  register(step: Step, parent: string | undefined, id = step.id, locals?: Record<string, unknown>): StepStatus {
    let s = this.steps.get(id);
    if (!s) {
      s = { id, parent, kind: step.kind, name: stepName(step, locals), state: 'pending', attempts: 0 };
      this.steps.set(id, s);
    }
    return s;
  }

  /** A step that never ran because an earlier one failed or fail_fast stopped its siblings. */
  skip(step: Step, parent: string | undefined): void {
    const s = this.register(step, parent);
    if (s.state === 'pending') s.state = 'skipped';
  }

  start(id: string): void {
    const s = this.steps.get(id);
    if (!s) return;
    s.state = 'running';
    s.attempts += 1;
    s.startedAt ??= new Date().toISOString();
    s.finishedAt = undefined;
    s.exitCode = undefined;
    s.message = undefined;
    this.publish();
  }

  /** A failed step keeps a note made while it ran (its timeout), unless a message replaces it. */
  finish(id: string, state: StepState, extra: { exitCode?: number; message?: string } = {}): void {
    const s = this.steps.get(id);
    if (!s) return;
    s.state = state;
    s.finishedAt = new Date().toISOString();
    if (extra.exitCode !== undefined) s.exitCode = extra.exitCode;
    s.message = extra.message ?? (state === 'failed' ? s.message : undefined);
    this.publish();
  }

  /** The version a get fetched or a put made. */
  resource(id: string, name: string, version: ResourceVersion): void {
    const s = this.steps.get(id);
    if (s) s.resource = { name, version };
  }

  /**
   * Why a running step has not started (no worker took its activity: workflows/waiting.ts), or
   * undefined once it has; it never replaces another message (a timeout's).
   */
  waiting(id: string, message: string | undefined): void {
    const s = this.steps.get(id);
    if (!s) return;
    if (message !== undefined && s.state === 'running' && s.message === undefined) this.waitingNotes.set(id, (s.message = message));
    else if (message === undefined && this.waitingNotes.has(id)) {
      if (s.message === this.waitingNotes.get(id)) s.message = undefined;
      this.waitingNotes.delete(id);
    } else return;
    this.publish();
  }

  /** Why a running step is about to end (a timeout), shown once it finishes. */
  note(id: string, message: string): void {
    const s = this.steps.get(id);
    if (s) s.message = message;
  }

  /** A service of the step `parent`, shown as its child with its own state and address. */
  service(id: string, name: string, parent: string, state: ServiceState, extra: { address?: string; message?: string } = {}): void {
    let s = this.steps.get(id);
    if (!s) {
      s = { id, parent, kind: 'service', name, state: 'pending', attempts: 0 };
      this.steps.set(id, s);
    }
    const now = new Date().toISOString();
    if (state === 'starting') {
      s.attempts += 1;
      s.startedAt ??= now;
      s.finishedAt = undefined;
    }
    if (state === 'stopped' || state === 'failed') s.finishedAt = now;
    s.state = state === 'stopped' ? 'succeeded' : state === 'failed' ? 'errored' : 'running';
    s.service = { state, address: extra.address ?? s.service?.address };
    s.message = extra.message;
    this.publish();
  }

  serviceState(id: string): ServiceState | undefined {
    return this.steps.get(id)?.service?.state;
  }

  exitCode(id: string, code: number): void {
    const s = this.steps.get(id);
    if (s) s.exitCode = code;
  }

  attempts(id: string): number {
    return this.steps.get(id)?.attempts ?? 1;
  }

  list(): StepStatus[] {
    return [...this.steps.values()];
  }

  /** A slice of a big list, run by a child workflow (workflows/fanout.ts). */
  part(ref: PartRef): void {
    this.partRefs.set(ref.workflowId, ref);
  }

  partState(workflowId: string, state: StepState): void {
    const ref = this.partRefs.get(workflowId);
    if (ref) ref.state = state;
    this.publish();
  }

  parts(): PartRef[] {
    return [...this.partRefs.values()];
  }

  /**
   * Markdown for the Temporal UI's "current details", rebuilt on every change: the whole tree
   * while it is small; beyond DETAILED_STEPS, counts by state and the steps running or not
   * succeeded, since rebuilding N lines on each of N changes cost O(N²) (a 5,000-step build
   * ran ~10 steps/s, and a 1,000-step workflow task outran the SDK's 5 s limit).
   */
  private publish(): void {
    if (this.steps.size > DETAILED_STEPS) return this.publishCounts();
    const depth = (s: StepStatus): number => {
      const parent = s.parent === undefined ? undefined : this.steps.get(s.parent);
      return parent ? depth(parent) + 1 : 0;
    };
    const lines = this.list().map((s) => {
      const extra = [
        s.attempts > 1 ? `attempt ${s.attempts}` : '',
        s.exitCode !== undefined ? `exit ${s.exitCode}` : '',
        s.message ?? '',
      ].filter(Boolean);
      if (s.service) {
        const detail = [s.service.address ?? '', s.message ?? ''].filter(Boolean);
        return `${'  '.repeat(depth(s))}- ${STATE_MARKS[s.state]} service **${s.name}** \`${s.id}\` ${s.service.state}${detail.length ? ` (${detail.join(', ')})` : ''}`;
      }
      return `${'  '.repeat(depth(s))}- ${STATE_MARKS[s.state]} **${s.name}** \`${s.id}\` ${s.state}${extra.length ? ` (${extra.join(', ')})` : ''}`;
    });
    setCurrentDetails(
      `### ${this.plan} — ${workflowInfo().workflowId}\n\n${this.waitingLine()}${[...lines, ...this.partLines()].join('\n')}`,
    );
  }

  private publishCounts(): void {
    const counts = new Map<StepState, number>();
    const notable: string[] = [];
    for (const s of this.steps.values()) {
      counts.set(s.state, (counts.get(s.state) ?? 0) + 1);
      if (notable.length < NOTABLE_STEPS && (s.state === 'running' || s.state === 'failed' || s.state === 'errored')) {
        notable.push(
          `- ${STATE_MARKS[s.state]} **${s.name}** \`${s.id}\` ${s.state}${s.exitCode !== undefined ? ` (exit ${s.exitCode})` : ''}`,
        );
      }
    }
    const total = `${this.steps.size} steps: ${[...counts].map(([state, n]) => `${n} ${state}`).join(', ')}`;
    setCurrentDetails(
      `### ${this.plan} — ${workflowInfo().workflowId}\n\n${this.waitingLine()}${total}\n\n${[...notable, ...this.partLines()].join('\n')}`,
    );
  }

  /** Above the tree, so the Temporal UI's details say it first. */
  private waitingLine(): string {
    const waiting = [...this.waitingNotes.keys()].map((id) => `\`${id}\``);
    return waiting.length
      ? `**Waiting for a worker** to start ${waiting.join(', ')} (see the step${waiting.length > 1 ? 's' : ''} below)\n\n`
      : '';
  }

  private partLines(): string[] {
    return this.parts().map(
      (p) => `- ${STATE_MARKS[p.state]} items ${p.from}–${p.to - 1} of \`${p.parent}\` in child workflow \`${p.workflowId}\` ${p.state}`,
    );
  }
}
