import os from 'node:os';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type pino from 'pino';
import {
  WORKER_BUCKET,
  WORKER_HEARTBEAT_MS,
  WORKER_TTL_MS,
  WorkerControl,
  workerControlSubject,
  type WorkerControlReply,
  type WorkerRecord,
} from '../schemas/workers';

export async function workerBucket(nc: NatsConnection): Promise<KV> {
  return new Kvm(nc).create(WORKER_BUCKET, { ttl: WORKER_TTL_MS });
}

/**
 * Keeps this worker's record in the registry (a key that expires unless refreshed, so a
 * dead worker disappears by itself) and answers `causeway land-worker`.
 */
export class WorkerPresence {
  private timer?: NodeJS.Timeout;
  private record: WorkerRecord;

  constructor(
    private readonly nc: NatsConnection,
    private readonly kv: KV,
    init: Pick<WorkerRecord, 'name' | 'runtime' | 'tags' | 'taskQueue'>,
    private readonly running: () => string[],
    private readonly log: pino.Logger,
  ) {
    const now = new Date().toISOString();
    this.record = { ...init, host: os.hostname(), pid: process.pid, state: 'running', running: [], startedAt: now, heartbeatAt: now };
  }

  async start(onLand: () => void): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat(), WORKER_HEARTBEAT_MS);
    this.nc.subscribe(workerControlSubject(this.record.name), {
      callback: (err, msg) => {
        if (err) return;
        const parsed = WorkerControl.safeParse(safeJson(msg.data));
        const reply: WorkerControlReply = parsed.success
          ? { ok: true, running: this.running().length, message: `landing: ${this.running().length} running step(s) finish here; no new steps start` }
          : { ok: false, running: this.running().length, message: `unknown control message: ${parsed.error.issues[0]?.message}` };
        msg.respond(JSON.stringify(reply));
        if (parsed.success && this.record.state !== 'landing') {
          this.record.state = 'landing';
          void this.beat();
          onLand();
        }
      },
    });
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.kv.delete(this.record.name).catch(() => undefined);
  }

  private async beat(): Promise<void> {
    this.record = { ...this.record, running: this.running(), heartbeatAt: new Date().toISOString() };
    await this.kv.put(this.record.name, JSON.stringify(this.record)).catch((err) => this.log.warn({ err: (err as Error).message }, 'could not refresh the worker registry'));
  }
}

function safeJson(data: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(data).toString('utf8'));
  } catch {
    return undefined;
  }
}
