import { Command, CommanderError } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
import { addConnectionFlags } from './connection-flags';
import { CliError, paint } from './output';

// Each command's module is loaded only when that command runs, so a client command never
// loads the worker SDK (its native core bridge, rxjs, webpack) and `--version` loads almost
// nothing: the SDKs cost ~0.5 s of start-up (BENCHMARKS.md, "CLI start-up").
type Register = (program: Command) => void;
const COMMANDS: [names: string[], load: () => Register][] = [
  [['run'], () => (require('./specs/run') as typeof import('./specs/run')).registerRun],
  [['execute'], () => (require('./specs/execute') as typeof import('./specs/execute')).registerExecute],
  [['compile'], () => (require('./specs/compile') as typeof import('./specs/compile')).registerCompile],
  [['watch'], () => (require('./specs/watch') as typeof import('./specs/watch')).registerWatch],
  [['abort'], () => (require('./specs/abort') as typeof import('./specs/abort')).registerAbort],
  [['builds', 'status'], () => (require('./specs/builds') as typeof import('./specs/builds')).registerBuilds],
  [['retry'], () => (require('./specs/retry') as typeof import('./specs/retry')).registerRetry],
  [['replay'], () => (require('./specs/replay') as typeof import('./specs/replay')).registerReplay],
  [['reconcile'], () => (require('./specs/reconcile') as typeof import('./specs/reconcile')).registerReconcile],
  [['worker'], () => (require('./specs/worker') as typeof import('./specs/worker')).registerWorker],
  [
    ['workers', 'land-worker', 'retire-worker', 'prune-worker'],
    () => (require('./specs/workers') as typeof import('./specs/workers')).registerWorkers,
  ],
  [['codec-server'], () => (require('./specs/codec-server') as typeof import('./specs/codec-server')).registerCodecServer],
  [
    // fly's names and aliases
    [
      ...['set-pipeline', 'sp', 'pipelines', 'ps', 'destroy-pipeline', 'dp', 'pause-pipeline', 'pp', 'unpause-pipeline', 'up'],
      ...['jobs', 'js', 'pause-job', 'pj', 'unpause-job', 'uj', 'trigger-job', 'tj', 'check-resource', 'cr'],
      ...['resource-versions', 'rvs', 'pin-resource', 'pr', 'unpin-resource', 'ur'],
    ],
    () => (require('./specs/pipelines') as typeof import('./specs/pipelines')).registerPipelines,
  ],
  [['dev'], () => (require('./specs/dev') as typeof import('./specs/dev')).registerDevCommands],
];

// dist/cli/main.js → the package root.
const { version } = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };

const program = new Command('causeway')
  .description('CI builds as durable Temporal workflows: Concourse plans, real services, builds that survive crashes')
  .version(version)
  .showHelpAfterError('(add --help for usage)')
  .addHelpText(
    'after',
    `
Getting started:
  causeway run examples/hello.yml       run a build (starts the embedded Temporal + NATS if needed)
  causeway builds                       recent builds
  causeway dev status                   the embedded stack: addresses, Temporal UI, pids

Exit status of run, execute, watch and retry: 0 succeeded, 1 failed, 2 errored, 3 aborted
(docs/cli.md lists every command's).`,
  );

/** The modules to load: the named command's, none for a bare --version, every one for help and typos. */
function commandsFor(args: string[]): Register[] {
  const name = args.find((a) => !a.startsWith('-'));
  const named = COMMANDS.find(([names]) => name !== undefined && names.includes(name));
  if (named) return [named[1]()];
  if (name === undefined && args.length > 0 && args.every((a) => a === '-V' || a === '--version')) return [];
  return COMMANDS.map(([, load]) => load());
}

async function main(): Promise<void> {
  addConnectionFlags(program);
  for (const register of commandsFor(process.argv.slice(2))) register(program);
  await program.parseAsync(process.argv);
}

main().catch((err: unknown) => {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  // By name: importing PlanError would load the YAML parser for every command.
  if (err instanceof Error && err.name === 'PlanError') {
    process.stderr.write(`${paint('red', 'invalid plan:')}\n${err.message}\n`);
    process.exit(2);
  }
  if (err instanceof CliError) {
    process.stderr.write(`${paint('red', 'error:')} ${err.message}\n${err.fix ? `  fix: ${err.fix}\n` : ''}`);
    process.exit(err.exitCode);
  }
  process.stderr.write(`${paint('red', 'error:')} ${(err as Error).message ?? String(err)}\n`);
  process.exit(2);
});
