import type { Command } from 'commander';
import { causewayHome, readEnv } from '../../common/config';
import { parseDuration } from '../../schemas';
import { createLogger } from '../../common/logger';
import { startLocalWorker } from '../../workers/local';
import { resolveEndpoints } from '../dev/stack';
import { CliError, say } from '../output';

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('run a local-runtime worker in the foreground (steps run as processes on this host)')
    .option('--name <name>', 'worker name; keep it stable so a restarted worker picks up its builds', undefined)
    .option('--tag <tag>', 'worker tag that steps may select with `tags:`; repeatable', (v: string, p: string[]) => [...p, v], [])
    .addHelpText(
      'after',
      `
Connects to TEMPORAL_ADDRESS / NATS_URL, or to the running dev stack. Step processes are
detached: stopping the worker (Ctrl-C, SIGTERM, even SIGKILL) leaves them running, and a
worker started again with the same name re-attaches to them.

Example:
  causeway worker --name builder-1 --tag linux`,
    )
    .action(async (opts: { name?: string; tag: string[] }) => {
      const env = readEnv();
      const endpoints = resolveEndpoints();
      if (!endpoints) throw new CliError('no Temporal/NATS to connect to', 'start them with `causeway dev up --no-worker`, or set TEMPORAL_ADDRESS and NATS_URL');
      const name = opts.name ?? env.CAUSEWAY_WORKER_NAME;
      if (name !== undefined && !/^[A-Za-z0-9_-]+$/.test(name)) throw new CliError(`--name ${name}: use letters, digits, _ and - only`);
      const worker = await startLocalWorker({
        temporalAddress: endpoints.temporalAddress,
        namespace: env.TEMPORAL_NAMESPACE,
        natsUrl: endpoints.natsUrl,
        home: causewayHome(env),
        name,
        tags: opts.tag,
        taskQueue: env.CAUSEWAY_TASK_QUEUE,
        logMaxAgeSeconds: Number(env.CAUSEWAY_LOG_MAX_AGE),
        reconcile: { intervalMs: parseDuration(env.CAUSEWAY_RECONCILE_INTERVAL), retentionMs: parseDuration(env.CAUSEWAY_ARTIFACT_RETENTION) },
        log: createLogger('worker'),
      });
      say(`worker ${worker.name} polling ${worker.taskQueue}; Ctrl-C stops it (running steps keep running)`);
      process.once('SIGINT', () => void worker.shutdown());
      process.once('SIGTERM', () => void worker.shutdown());
      await worker.done;
    });
}
