// A build started from a TypeScript program with the Temporal client alone (docs/client.md).
// Usage: node dist/examples/clients/start-build.js INPUT.json   (INPUT.json from `causeway compile`)
// Env: TEMPORAL_ADDRESS (default localhost:7233), TEMPORAL_NAMESPACE (default), CAUSEWAY_TASK_QUEUE (causeway).
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';

async function main(): Promise<void> {
  const input: unknown = JSON.parse(readFileSync(process.argv[2], 'utf8'));
  const connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS ?? 'localhost:7233' });
  const client = new Client({ connection, namespace: process.env.TEMPORAL_NAMESPACE ?? 'default' });
  try {
    const handle = await client.workflow.start('build', {
      taskQueue: process.env.CAUSEWAY_TASK_QUEUE ?? 'causeway',
      workflowId: `build-${randomUUID()}`,
      args: [input],
    });
    console.log(`started ${handle.workflowId}`);
    try {
      const summary = (await handle.result()) as { status: string };
      console.log(`succeeded: ${summary.status}`);
    } catch (err) {
      // A failed build fails with type BuildFailed, an errored one with BuildErrored; details[0] is the summary.
      const cause = err instanceof WorkflowFailedError ? err.cause : err;
      if (!(cause instanceof ApplicationFailure)) throw err;
      console.log(`${cause.type}: ${cause.message}`);
      process.exitCode = cause.type === 'BuildFailed' ? 1 : 2;
    }
  } finally {
    await connection.close();
  }
}

void main();
