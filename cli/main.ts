import { CLIENT_COMMANDS as c } from './client-commands';
import { type CommandTable, runCli } from './program';

// Every command (cli/client-commands.ts has those bin/causeway runs from the bundle).
const COMMANDS: CommandTable = [
  c.run,
  c.execute,
  c.compile,
  c.watch,
  c.abort,
  c.builds,
  c.retry,
  [['replay'], () => (require('./specs/replay') as typeof import('./specs/replay')).registerReplay],
  [['reconcile'], () => (require('./specs/reconcile') as typeof import('./specs/reconcile')).registerReconcile],
  [['worker'], () => (require('./specs/worker') as typeof import('./specs/worker')).registerWorker],
  [
    ['workers', 'land-worker', 'retire-worker', 'prune-worker'],
    () => (require('./specs/workers') as typeof import('./specs/workers')).registerWorkers,
  ],
  [['codec-server'], () => (require('./specs/codec-server') as typeof import('./specs/codec-server')).registerCodecServer],
  c.pipelines,
  [['dev'], () => (require('./specs/dev') as typeof import('./specs/dev')).registerDevCommands],
];

runCli(COMMANDS);
