import { WorkerControlReply, shownState, workerControlSubject, type WorkerControl } from '../../schemas/workers';
import { PruneRefused, listWorkers, pruneWorker, workerBucket } from '../../workers/registry';
import { openSession } from '../connect';
import { CliError, formatDuration, paint, printJson, say, table } from '../output';

const STATE_COLOR = { running: 'green', landing: 'yellow', retiring: 'yellow', landed: 'cyan', stalled: 'red' } as const;

export async function workers(opts: { json?: boolean }): Promise<void> {
  const session = await openSession({ autoStart: false });
  try {
    const now = Date.now();
    if (opts.json)
      return printJson(
        (await listWorkers(await workerBucket(session.nc))).map((w) => ({ ...w, state: shownState(w, now), recordedState: w.state })),
      );
    const rows = [['NAME', 'STATE', 'RUNTIME', 'HOST', 'PID', 'TAGS', 'RUNNING', 'UP', 'HEARD']];
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
      ]);
    }
    console.log(rows.length === 1 ? 'no workers: start one with `causeway dev up` or `causeway worker`' : table(rows));
  } finally {
    await session.close();
  }
}

export async function landWorker(name: string): Promise<void> {
  await control(name, 'land');
}

export async function retireWorker(name: string): Promise<void> {
  await control(name, 'retire');
}

export async function prune(name: string): Promise<void> {
  const session = await openSession({ autoStart: false });
  try {
    const pruned = await pruneWorker(await workerBucket(session.nc), name);
    say(`pruned worker ${name} (${pruned.runtime} on ${pruned.host}, last heard ${pruned.heartbeatAt})`);
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
