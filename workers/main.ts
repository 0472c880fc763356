// Entry point of a local worker process (`node dist/workers/main.js`), as `causeway dev up` starts it.
import { causewayHome, readEnv } from '../common/config';
import { parseDuration } from '../schemas/units';
import { createLogger } from '../common/logger';
import { workerCredentials } from './credentials';
import { startLocalWorker } from './local';
import { installSdkLogger } from './sdk-logger';

async function main(): Promise<void> {
  installSdkLogger();
  const env = readEnv();
  const log = createLogger('worker');
  const worker = await startLocalWorker({
    temporalAddress: env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233',
    namespace: env.TEMPORAL_NAMESPACE,
    natsUrl: env.NATS_URL ?? 'nats://127.0.0.1:4222',
    home: causewayHome(env),
    name: env.CAUSEWAY_WORKER_NAME,
    tags: env.CAUSEWAY_WORKER_TAGS?.split(',').filter(Boolean),
    taskQueue: env.CAUSEWAY_TASK_QUEUE,
    logMaxAgeSeconds: Number(env.CAUSEWAY_LOG_MAX_AGE),
    credentials: workerCredentials(env),
    reconcile: { intervalMs: parseDuration(env.CAUSEWAY_RECONCILE_INTERVAL), retentionMs: parseDuration(env.CAUSEWAY_ARTIFACT_RETENTION) },
    log,
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log.info({ signal }, 'shutting down: no new steps; running steps keep running detached');
      void worker.shutdown();
    });
  }
  await worker.done;
}

main().catch((err) => {
  console.error(`causeway worker: ${(err as Error).message}`);
  process.exit(1);
});
