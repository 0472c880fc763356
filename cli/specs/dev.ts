import type { Command } from 'commander';
import { lazy } from './lazy';

const impl = () => require('../dev/commands') as typeof import('../dev/commands');

export function registerDevCommands(program: Command): void {
  const dev = program
    .command('dev')
    .description('run a local Temporal dev server, NATS JetStream and a worker for development')
    .addHelpText('after', '\nExample:\n  $ causeway dev up && causeway run plan.yml && causeway dev down\n');

  dev
    .command('up')
    .description(
      'start the dev stack in the background (kept in CAUSEWAY_HOME: ~/.causeway, /var/lib/causeway for root); builds survive a restart',
    )
    .option('--no-worker', 'do not start a worker (run your own, e.g. from a debugger)')
    .option(
      '--runtime <runtime>',
      'local: steps are processes on this host; containerd: steps are containers (root; docs/containerd.md); kubernetes: a cluster with one real node, steps are pods (root; docs/kubernetes.md)',
      'local',
    )
    .option('--temporal-port <port>', 'Temporal gRPC port (default 7233)')
    .option('--ui-port <port>', 'Temporal UI port (default: the Temporal port + 1000)')
    .option('--nats-port <port>', 'NATS client port (default 4222)')
    .option('--codec-port <port>', "the codec server the UI decrypts payloads with (default: the UI's port + 1)")
    .addHelpText(
      'after',
      '\nExamples:\n  $ causeway dev up\n  $ causeway dev up --no-worker --temporal-port 7300 --nats-port 4300\n  $ sudo causeway dev up --runtime containerd\n  $ sudo causeway dev up --runtime kubernetes\n',
    )
    .action(lazy(() => impl().devUp));

  dev
    .command('down')
    .description('stop the dev stack (workers, then NATS and Temporal; SIGKILL after 10s); its data is kept')
    .addHelpText('after', '\nExample:\n  $ causeway dev down\n')
    .action(lazy(() => impl().devDown));

  dev
    .command('status')
    .description('show whether each part of the dev stack is alive and answering; exits 1 if it is not running')
    .addHelpText('after', '\nExample:\n  $ causeway dev status || causeway dev up\n')
    .action(lazy(() => impl().devStatus));
}
