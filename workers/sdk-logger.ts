import { DefaultLogger, Runtime } from '@temporalio/worker';

/** Logged by the SDK for a Worker without workflows; a worker's own-queue poller has none on purpose. */
const NO_WORKFLOWS_WARNING = 'No workflows registered, not polling for workflow tasks';

/** The SDK speaks only when something is wrong, and not about our activities-only poller. */
export function installSdkLogger(): void {
  Runtime.install({
    logger: new DefaultLogger('WARN', (entry) => {
      if (entry.message === NO_WORKFLOWS_WARNING) return;
      const time = new Date(Number(entry.timestampNanos / 1_000_000n)).toISOString();
      process.stderr.write(`${time} [${entry.level}] ${entry.message}${entry.meta ? ` ${JSON.stringify(entry.meta)}` : ''}\n`);
    }),
  });
}
