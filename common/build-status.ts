import { WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import type { BuildSummary, PartRef, StepStatus } from '../schemas/build';

/** Parts asked at once: each answer is at most one part's steps (workflows/fanout.ts). */
const PARTS_AT_ONCE = 8;

/**
 * A build's whole step tree: its own `status`, plus the steps of every part (child workflow)
 * that ran a slice of a big list. A closed part's steps come from its result (the close event
 * only, no replay); a running one answers its `status` query. Each answer stays small however
 * big the build is.
 */
export async function fullStatus(client: Client, buildId: string, runId?: string): Promise<BuildSummary> {
  return expandParts(client, await client.workflow.getHandle(buildId, runId).query<BuildSummary>('status'));
}

/** A build's own summary (its result or its query's answer) with the steps of its parts added, in tree order. */
export async function expandParts(client: Client, summary: BuildSummary): Promise<BuildSummary> {
  if (!summary.parts?.length) return summary;
  const steps: StepStatus[][] = [summary.steps];
  const parts: PartRef[] = [...summary.parts];
  const queue = parts.filter((p) => p.state !== 'skipped' && p.state !== 'pending');
  const worker = async () => {
    for (let p = queue.shift(); p; p = queue.shift()) {
      const part = await partStatus(client.workflow.getHandle(p.workflowId));
      if (!part) continue;
      steps.push(part.steps);
      parts.push(...(part.parts ?? []));
      queue.push(...(part.parts ?? []).filter((q) => q.state !== 'skipped' && q.state !== 'pending'));
    }
  };
  await Promise.all(Array.from({ length: PARTS_AT_ONCE }, worker));
  return { ...summary, steps: treeOrder(steps.flat()), parts };
}

async function partStatus(handle: WorkflowHandle): Promise<Pick<BuildSummary, 'steps' | 'parts'> | undefined> {
  const { status } = await handle.describe();
  if (status.name === 'COMPLETED') return (await handle.result()) as Pick<BuildSummary, 'steps' | 'parts'>;
  if (status.name === 'FAILED') {
    try {
      await handle.result();
    } catch (err) {
      const details = err instanceof WorkflowFailedError ? (err.cause as { details?: unknown[] } | undefined)?.details : undefined;
      if (details?.[0]) return details[0] as Pick<BuildSummary, 'steps' | 'parts'>;
    }
  }
  // Running, cancelled or terminated: its status query (a replay once it has closed).
  return handle.query<BuildSummary>('status');
}

/** Steps in tree order (each after its parent and its earlier siblings), as one workflow would list them. */
function treeOrder(steps: StepStatus[]): StepStatus[] {
  const ids = new Set(steps.map((s) => s.id));
  const children = new Map<string | undefined, StepStatus[]>();
  for (const s of steps) {
    const key = s.parent !== undefined && ids.has(s.parent) ? s.parent : undefined;
    const siblings = children.get(key);
    if (siblings) siblings.push(s);
    else children.set(key, [s]);
  }
  const out: StepStatus[] = [];
  const visit = (key: string | undefined) => {
    for (const child of children.get(key) ?? []) {
      out.push(child);
      visit(child.id);
    }
  };
  visit(undefined);
  return out;
}
