import type { Command } from 'commander';
import { WorkerControlReply, shownState, workerControlSubject, type WorkerControl } from '../../schemas/workers';
import { PruneRefused, listWorkers, pruneWorker, workerBucket } from '../../workers/registry';
import { openSession } from '../connect';
import { CliError, formatDuration, paint, printJson, say, table } from '../output';

const STATE_COLOR = { running: 'green', landing: 'yellow', retiring: 'yellow', landed: 'cyan', stalled: 'red' } as const;

export function registerWorkers(program: Command): void {
  program
    .command('workers')
    .description('list the workers: state, runtime, tags, running steps')
    .option('--json', 'print a JSON array of the registry entries, each with its shown state')
    .addHelpText(
      'after',
      `
States: running; landing / retiring (finishing their running steps, taking no new ones);
landed (stopped by land-worker, listed until it starts again); stalled (not heard from for
30 s: it crashed or lost NATS; listed until it comes back or is pruned). Workers refresh
their entry every 5 s. A retired worker, or one stopped with SIGTERM, leaves the list.

Example:
  causeway workers`,
    )
    .action(async (opts: { json?: boolean }) => {
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
    });

  program
    .command('land-worker')
    .description('land a worker: it takes no new steps and lets its running steps finish, then exits')
    .argument('<name>', 'worker name, as `causeway workers` lists it')
    .addHelpText(
      'after',
      `
For maintenance: the worker is expected back under the same name. Builds it claimed wait
for it, since their artifacts are on its disk (or in its namespace). Steps still running
after the worker's drain period are handed over, not killed. It stays listed as landed.

Example:
  causeway land-worker builder-1`,
    )
    .action((name: string) => control(name, 'land'));

  program
    .command('retire-worker')
    .description('retire a worker for good: it lands (running steps finish, no new ones start), then leaves the worker list')
    .argument('<name>', 'worker name, as `causeway workers` lists it')
    .addHelpText(
      'after',
      `
Use it when the machine or namespace goes away. Builds that still need the worker's
artifacts wait for a worker of its name: let them finish (or abort them) first.

Example:
  causeway retire-worker builder-1`,
    )
    .action((name: string) => control(name, 'retire'));

  program
    .command('prune-worker')
    .description('remove a stalled or landed worker from the worker list')
    .argument('<name>', 'worker name, as `causeway workers` lists it')
    .addHelpText(
      'after',
      `
A worker that crashed stays listed as stalled so it is noticed; prune it once you know it
is not coming back. A running worker cannot be pruned: retire it instead.

Example:
  causeway prune-worker builder-1`,
    )
    .action(async (name: string) => {
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
    });
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
