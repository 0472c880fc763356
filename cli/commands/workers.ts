import type { Command } from 'commander';
import { WorkerControlReply, WorkerRecord, workerControlSubject, type WorkerControl } from '../../schemas/workers';
import { workerBucket } from '../../workers/registry';
import { openSession } from '../connect';
import { CliError, formatDuration, paint, say, table } from '../output';

export function registerWorkers(program: Command): void {
  program
    .command('workers')
    .description('list the workers that are alive: state, runtime, tags, running steps')
    .addHelpText('after', '\nWorkers refresh their entry every 5 s; one silent for 30 s drops off the list.\n\nExample:\n  causeway workers')
    .action(async () => {
      const session = await openSession({ autoStart: false });
      try {
        const kv = await workerBucket(session.nc);
        const rows = [['NAME', 'STATE', 'RUNTIME', 'HOST', 'PID', 'TAGS', 'RUNNING', 'UP']];
        for await (const key of await kv.keys()) {
          const entry = await kv.get(key);
          const parsed = entry ? WorkerRecord.safeParse(entry.json()) : undefined;
          if (!parsed?.success) continue;
          const w = parsed.data;
          rows.push([
            w.name,
            w.state === 'running' ? paint('green', w.state) : paint('yellow', w.state),
            w.runtime,
            w.host,
            String(w.pid),
            w.tags.join(',') || '-',
            String(w.running.length),
            formatDuration(Date.now() - Date.parse(w.startedAt)),
          ]);
        }
        console.log(rows.length === 1 ? 'no workers are alive: start one with `causeway dev up` or `causeway worker`' : table(rows));
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
Builds the worker claimed wait for a worker of the same name, since their artifacts are
on its disk. Steps still running after the worker's drain period are handed over, not killed.

Example:
  causeway land-worker builder-1`,
    )
    .action(async (name: string) => {
      const session = await openSession({ autoStart: false });
      try {
        const request: WorkerControl = { action: 'land' };
        let reply: WorkerControlReply;
        try {
          const msg = await session.nc.request(workerControlSubject(name), JSON.stringify(request), { timeout: 5000 });
          reply = WorkerControlReply.parse(msg.json());
        } catch (err) {
          throw new CliError(`worker ${name} did not answer (${(err as Error).message})`, 'check the name with `causeway workers`');
        }
        if (!reply.ok) throw new CliError(`worker ${name}: ${reply.message}`);
        say(`worker ${name} ${reply.message}`);
      } finally {
        await session.close();
      }
    });
}
