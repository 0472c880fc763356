import type { Command } from 'commander';
import { lazy } from './lazy';

const impl = () => require('../commands/workers') as typeof import('../commands/workers');

export function registerWorkers(program: Command): void {
  program
    .command('workers')
    .description('list the workers: state, runtime, tags, running steps')
    .option(
      '-d, --details',
      "also print each worker's task queue, when it started and the ids of its running steps (fly's: garden address, active tasks)",
    )
    .option('--json', 'print a JSON array of the registry entries, each with its shown state (every detail, with or without -d)')
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
    .action(lazy(() => impl().workers));

  program
    .command('land-worker')
    .description('land a worker: it takes no new steps and lets its running steps finish, then exits')
    .argument('[name]', 'worker name, as `causeway workers` lists it')
    .option('-w, --worker <name>', 'the worker, as fly names it (the same as NAME)')
    .addHelpText(
      'after',
      `
For maintenance: the worker is expected back under the same name. Builds it claimed wait
for it, since their artifacts are on its disk (or in its namespace). Steps still running
after the worker's drain period are handed over, not killed. It stays listed as landed.

Example:
  causeway land-worker builder-1`,
    )
    .action(lazy(() => impl().landWorker));

  program
    .command('retire-worker')
    .description('retire a worker for good: it lands (running steps finish, no new ones start), then leaves the worker list')
    .argument('[name]', 'worker name, as `causeway workers` lists it')
    .option('-w, --worker <name>', 'the worker, as fly names it (the same as NAME)')
    .addHelpText(
      'after',
      `
Use it when the machine or namespace goes away. Builds that still need the worker's
artifacts wait for a worker of its name: let them finish (or abort them) first.

Example:
  causeway retire-worker builder-1`,
    )
    .action(lazy(() => impl().retireWorker));

  program
    .command('prune-worker')
    .description('remove a stalled or landed worker from the worker list')
    .argument('[name]', 'worker name, as `causeway workers` lists it')
    .option('-w, --worker <name>', 'the worker, as fly names it (the same as NAME)')
    .option('-a, --all-stalled', 'prune every stalled worker')
    .addHelpText(
      'after',
      `
A worker that crashed stays listed as stalled so it is noticed; prune it once you know it
is not coming back. A running worker cannot be pruned: retire it instead.

Example:
  causeway prune-worker builder-1
  causeway prune-worker --all-stalled`,
    )
    .action(lazy(() => impl().prune));
}
