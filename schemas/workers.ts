import { z } from 'zod';

// The worker registry (NATS KV) and the control messages the CLI sends to workers.
export const WORKER_BUCKET = 'causeway-workers';
/** A worker not heard from for this long drops out of the registry. */
export const WORKER_TTL_MS = 30_000;
export const WORKER_HEARTBEAT_MS = 5_000;

export const workerControlSubject = (name: string) => `causeway.worker.${name}.control`;

export const WorkerState = z.enum(['running', 'landing']);

export const WorkerRecord = z.object({
  name: z.string(),
  runtime: z.enum(['local', 'kubernetes']),
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

export const WorkerControl = z.object({ action: z.literal('land') });
export type WorkerControl = z.infer<typeof WorkerControl>;

export const WorkerControlReply = z.object({ ok: z.boolean(), running: z.number().int(), message: z.string() });
export type WorkerControlReply = z.infer<typeof WorkerControlReply>;
