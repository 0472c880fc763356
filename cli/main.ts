import { DefaultLogger, Runtime } from '@temporalio/worker';
import { Command, CommanderError } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
import { PlanError } from '../schemas';
import { registerAbort } from './commands/abort';
import { registerBuilds } from './commands/builds';
import { registerCodecServer } from './commands/codec-server';
import { registerExecute } from './commands/execute';
import { registerReconcile } from './commands/reconcile';
import { registerReplay } from './commands/replay';
import { registerRetry } from './commands/retry';
import { registerRun } from './commands/run';
import { registerWatch } from './commands/watch';
import { registerWorker } from './commands/worker';
import { registerWorkers } from './commands/workers';
import { registerDevCommands } from './dev/commands';
import { repoRoot } from './dev/stack';
import { CliError, paint } from './output';

// The CLI's own output is the interface; the SDK speaks only when something is wrong.
Runtime.install({ logger: new DefaultLogger('WARN') });

const { version } = JSON.parse(fs.readFileSync(path.join(repoRoot(), 'package.json'), 'utf8')) as { version: string };

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
  causeway dev status                   the embedded stack: addresses, Temporal UI, pids`,
  );

registerRun(program);
registerExecute(program);
registerWatch(program);
registerAbort(program);
registerBuilds(program);
registerRetry(program);
registerReplay(program);
registerReconcile(program);
registerWorker(program);
registerWorkers(program);
registerCodecServer(program);
registerDevCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  if (err instanceof PlanError) {
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
