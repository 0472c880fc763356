import { WorkerControlReply, shownState, workerControlSubject, type WorkerControl } from '../../schemas/workers';
import { PruneRefused, listWorkers, pruneWorker, workerBucket } from '../../workers/registry';
import { openSession } from '../connect';
import { CliError, formatDuration, paint, printJson, say, table } from '../output';

/** `-d`: what fly's --details shows in our terms: where builds reach the worker (its garden address), its active steps. */
const DETAILS = ['TASK QUEUE', 'STARTED', 'RUNNING STEPS'];

const STATE_COLOR = { running: 'green', landing: 'yellow', retiring: 'yellow', landed: 'cyan', stalled: 'red' } as const;

export async function workers(opts: { json?: boolean; details?: boolean }): Promise<void> {
  const session = await openSession({ autoStart: false });
  try {
    const now = Date.now();
    if (opts.json)
      return printJson(
        (await listWorkers(await workerBucket(session.nc))).map((w) => ({ ...w, state: shownState(w, now), recordedState: w.state })),
      );
    const rows = [['NAME', 'STATE', 'RUNTIME', 'HOST', 'PID', 'TAGS', 'RUNNING', 'UP', 'HEARD', ...(opts.details ? DETAILS : [])]];
    for (const w of await listWorkers(await workerBucket(session.nc))) {
      const state = shownState(w, now);
      rows.push([
        w.name,
        paint(STATE_COLOR[state], state),
        w.runtime,
        w.host,
        String(w.pid),
        w.tags.join(',') || '-',
        String(w.running.length),
        // a worker that stopped was up until it was last heard from
        formatDuration((state === 'landed' || state === 'stalled' ? Date.parse(w.heartbeatAt) : now) - Date.parse(w.startedAt)),
        `${formatDuration(now - Date.parse(w.heartbeatAt))} ago`,
        ...(opts.details ? [w.taskQueue, w.startedAt, w.running.join(',') || '-'] : []),
      ]);
    }
    console.log(rows.length === 1 ? 'no workers: start one with `causeway dev up` or `causeway worker`' : table(rows));
  } finally {
    await session.close();
  }
}

interface WorkerFlags {
  worker?: string;
}

/** The worker named by NAME or fly's `-w NAME`, given once. */
function workerName(name: string | undefined, opts: WorkerFlags): string {
  if (name !== undefined && opts.worker !== undefined && name !== opts.worker)
    throw new CliError(`two workers named: ${name} and -w ${opts.worker}`, 'name one worker, as NAME or as -w NAME');
  const named = name ?? opts.worker;
  if (named === undefined) throw new CliError('which worker?', 'name it as NAME or -w NAME; `causeway workers` lists them');
  return named;
}

export async function landWorker(name: string | undefined, opts: WorkerFlags): Promise<void> {
  await control(workerName(name, opts), 'land');
}

export async function retireWorker(name: string | undefined, opts: WorkerFlags): Promise<void> {
  await control(workerName(name, opts), 'retire');
}

export async function prune(name: string | undefined, opts: WorkerFlags & { allStalled?: boolean }): Promise<void> {
  if (opts.allStalled && (name ?? opts.worker) !== undefined)
    throw new CliError('--all-stalled prunes every stalled worker: name none', 'drop the name, or drop --all-stalled');
  const names = opts.allStalled ? undefined : [workerName(name, opts)];
  const session = await openSession({ autoStart: false });
  try {
    const kv = await workerBucket(session.nc);
    const now = Date.now();
    const stalled = names ?? (await listWorkers(kv)).filter((w) => shownState(w, now) === 'stalled').map((w) => w.name);
    if (stalled.length === 0) return say('no stalled workers');
    for (const n of stalled) {
      const pruned = await pruneWorker(kv, n, now);
      say(`pruned worker ${n} (${pruned.runtime} on ${pruned.host}, last heard ${pruned.heartbeatAt})`);
    }
  } catch (err) {
    if (err instanceof PruneRefused) throw new CliError(err.message, err.fix);
    throw err;
  } finally {
    await session.close();
  }
}

async function control(name: string, action: WorkerControl['action']): Promise<void> {
  const session = await openSession({ autoStart: false });
  try {
    const request: WorkerControl = { action };
    let reply: WorkerControlReply;
    try {
      const msg = await session.nc.request(workerControlSubject(name), JSON.stringify(request), { timeout: 5000 });
      reply = WorkerControlReply.parse(msg.json());
    } catch (err) {
      throw new CliError(
        `worker ${name} did not answer (${(err as Error).message})`,
        'check the name and its state with `causeway workers`',
      );
    }
    if (!reply.ok) throw new CliError(`worker ${name}: ${reply.message}`);
    say(`worker ${name} ${reply.message}`);
  } finally {
    await session.close();
  }
}
