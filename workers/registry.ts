import os from 'node:os';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type pino from 'pino';
import {
  WORKER_BUCKET,
  WORKER_HEARTBEAT_MS,
  WorkerControl,
  type WorkerControlReply,
  WorkerRecord,
  shownState,
  workerControlSubject,
} from '../schemas/workers';

export async function workerBucket(nc: NatsConnection): Promise<KV> {
  return new Kvm(nc).create(WORKER_BUCKET);
}

/**
 * Keeps this worker's record in the registry, refreshed every few seconds, and answers
 * `causeway land-worker` / `retire-worker`. On the way out a landed worker stays listed as
 * `landed`; a retired one, or one stopped for good (SIGTERM), leaves the list. A worker that
 * dies leaves its record behind, shown as stalled until it comes back or is pruned.
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

  /** `onControl` runs once, at the first land or retire: the worker takes no new steps from then on. */
  async start(onControl: (action: WorkerControl['action']) => void): Promise<void> {
    this.nc.subscribe(workerControlSubject(this.record.name), {
      callback: (err, msg) => {
        if (err) return;
        const parsed = WorkerControl.safeParse(safeJson(msg.data));
        const running = this.running().length;
        if (!parsed.success) {
          msg.respond(
            JSON.stringify({
              ok: false,
              running,
              message: `unknown control message: ${parsed.error.issues[0]?.message}`,
            } satisfies WorkerControlReply),
          );
          return;
        }
        const retire = parsed.data.action === 'retire';
        const first = this.record.state === 'running';
        // Retiring a landing worker makes it leave the list for good when it stops.
        if (first || retire) this.record.state = retire ? 'retiring' : 'landing';
        const then =
          this.record.state === 'retiring'
            ? 'then it leaves the worker list for good'
            : 'then it is listed as landed until it starts again';
        msg.respond(
          JSON.stringify({
            ok: true,
            running,
            message: `${this.record.state}: ${running} running step(s) finish here, no new steps start; ${then}`,
          } satisfies WorkerControlReply),
        );
        void this.beat();
        if (first) onControl(parsed.data.action);
      },
    });
    // Listed only once it answers: a land-worker sent right after it appears found no responder
    // (the subscription was not yet on the server; worker-lifecycle.test.ts failed so in CI).
    await this.nc.flush();
    await this.beat();
    this.timer = setInterval(() => void this.beat(), WORKER_HEARTBEAT_MS);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    if (this.record.state === 'landing') {
      this.record.state = 'landed';
      await this.beat();
    } else {
      await this.kv.delete(this.record.name).catch(() => undefined);
    }
  }

  private async beat(): Promise<void> {
    this.record = { ...this.record, running: this.running(), heartbeatAt: new Date().toISOString() };
    await this.kv
      .put(this.record.name, JSON.stringify(this.record))
      .catch((err) => this.log.warn({ err: (err as Error).message }, 'could not refresh the worker registry'));
  }
}

/** Every worker in the registry, parsed (records that do not parse are skipped). */
export async function listWorkers(kv: KV): Promise<WorkerRecord[]> {
  const workers: WorkerRecord[] = [];
  for await (const key of await kv.keys()) {
    const entry = await kv.get(key);
    const parsed = entry && entry.operation === 'PUT' ? WorkerRecord.safeParse(entry.json()) : undefined;
    if (parsed?.success) workers.push(parsed.data);
  }
  return workers.sort((a, b) => a.name.localeCompare(b.name));
}

export class PruneRefused extends Error {
  constructor(
    message: string,
    readonly fix: string,
  ) {
    super(message);
  }
}

/**
 * Removes a stalled or landed worker from the registry (`causeway prune-worker`). A live one
 * is refused: it would put itself back within seconds; land or retire it instead.
 */
export async function pruneWorker(kv: KV, name: string, now = Date.now()): Promise<WorkerRecord> {
  const entry = await kv.get(name);
  const parsed = entry && entry.operation === 'PUT' ? WorkerRecord.safeParse(entry.json()) : undefined;
  if (!parsed?.success) throw new PruneRefused(`no worker named ${name} in the registry`, 'see the names with `causeway workers`');
  const state = shownState(parsed.data, now);
  if (state !== 'stalled' && state !== 'landed') {
    const heard = Math.round((now - Date.parse(parsed.data.heartbeatAt)) / 1000);
    throw new PruneRefused(
      `worker ${name} is ${state} (heard from ${heard}s ago): only stalled or landed workers can be pruned`,
      `retire it instead: \`causeway retire-worker ${name}\``,
    );
  }
  await kv.delete(name);
  return parsed.data;
}

function safeJson(data: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(data).toString('utf8'));
  } catch {
    return undefined;
  }
}
