import { z } from 'zod';

// The worker registry (NATS KV) and the control messages the CLI sends to workers.
// Concourse's lifecycle: a worker that crashed stays listed as stalled, and a landed one as
// landed, until it comes back under its name or is pruned; a retired one leaves for good.
// (The bucket has no TTL, which is why it is not the first registry's `causeway-workers`.)
export const WORKER_BUCKET = 'causeway-worker-registry';
/** A worker not heard from for this long is stalled. */
export const WORKER_STALLED_MS = 30_000;
export const WORKER_HEARTBEAT_MS = 5_000;

export const workerControlSubject = (name: string) => `causeway.worker.${name}.control`;

export const WorkerState = z.enum(['running', 'landing', 'landed', 'retiring']);
export type WorkerState = z.infer<typeof WorkerState>;

export const WorkerRecord = z.object({
  name: z.string(),
  runtime: z.enum(['local', 'containerd', 'kubernetes']),
  host: z.string(),
  pid: z.number().int(),
  tags: z.array(z.string()),
  state: WorkerState,
  taskQueue: z.string(),
  /** step ids running on this worker right now, `<build>/<step>` */
  running: z.array(z.string()),
  startedAt: z.string(),
  heartbeatAt: z.string(),
});
export type WorkerRecord = z.infer<typeof WorkerRecord>;

/** What `causeway workers` shows: the recorded state, or `stalled` for a live state no longer refreshed. */
export function shownState(record: WorkerRecord, now: number): WorkerState | 'stalled' {
  if (record.state === 'landed') return 'landed';
  return now - Date.parse(record.heartbeatAt) > WORKER_STALLED_MS ? 'stalled' : record.state;
}

export const WorkerControl = z.object({ action: z.enum(['land', 'retire']) });
export type WorkerControl = z.infer<typeof WorkerControl>;

export const WorkerControlReply = z.object({ ok: z.boolean(), running: z.number().int(), message: z.string() });
export type WorkerControlReply = z.infer<typeof WorkerControlReply>;
