import { Command, CommanderError } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
import { addConnectionFlags } from './connection-flags';
import { CliError, paint } from './output';

// Each command's module is loaded only when that command runs, so a client command never
// loads the worker SDK (its native core bridge, rxjs, webpack) and `--version` loads almost
// nothing: the SDKs cost ~0.5 s of start-up (BENCHMARKS.md, "CLI start-up").
export type Register = (program: Command) => void;
export type CommandTable = [names: string[], load: () => Register][];

/** The command named by the arguments (the first that is not a flag), if any. */
export function commandName(args: string[]): string | undefined {
  return args.find((a) => !a.startsWith('-'));
}

/** The modules to load: the named command's, none for a bare --version, every one for help and typos. */
function commandsFor(commands: CommandTable, args: string[]): Register[] {
  const name = commandName(args);
  const named = commands.find(([names]) => name !== undefined && names.includes(name));
  if (named) return [named[1]()];
  if (name === undefined && args.length > 0 && args.every((a) => a === '-V' || a === '--version')) return [];
  return commands.map(([, load]) => load());
}

/** Parses the command line with `commands` and runs the command, exiting with its status on an error. */
export function runCli(commands: CommandTable): void {
  // dist/cli/program.js (or the bundle beside it) → the package root.
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

  // A reader that stops early (`causeway compile plan.yml | head`) is no error: end quietly, as
  // other tools do, instead of Node's "Unhandled 'error' event" stack trace.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });

  async function main(): Promise<void> {
    addConnectionFlags(program);
    for (const register of commandsFor(commands, process.argv.slice(2))) register(program);
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
}
