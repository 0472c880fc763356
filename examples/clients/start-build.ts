// A build started from a TypeScript program with the Temporal client alone (docs/client.md).
// Usage: node dist/examples/clients/start-build.js INPUT.json   (INPUT.json from `causeway compile`)
// Env: TEMPORAL_ADDRESS (default localhost:7233), TEMPORAL_NAMESPACE (default), CAUSEWAY_TASK_QUEUE (causeway),
// CAUSEWAY_CODEC_ENDPOINT and CAUSEWAY_CODEC_TOKEN: the codec server that en/decrypts payloads (docs/security.md).
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, type Payload, type PayloadCodec } from '@temporalio/common';

/** Temporal's remote codec protocol: POST {payloads: [{metadata: {k: base64}, data: base64}]} to /encode or /decode. */
function remoteCodec(endpoint: string, token: string): PayloadCodec {
  const b64 = (b: Uint8Array | null | undefined) => Buffer.from(b ?? new Uint8Array()).toString('base64');
  const call = async (action: string, payloads: Payload[]): Promise<Payload[]> => {
    const body = {
      payloads: payloads.map((p) => ({
        metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, b64(v)])),
        data: b64(p.data),
      })),
    };
    const res = await fetch(`${endpoint}/${action}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`codec server ${endpoint}/${action}: ${res.status} ${await res.text()}`);
    const out = (await res.json()) as { payloads: Array<{ metadata: Record<string, string>; data: string }> };
    return out.payloads.map((p) => ({
      metadata: Object.fromEntries(Object.entries(p.metadata).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
      data: Buffer.from(p.data, 'base64'),
    }));
  };
  return { encode: (p) => call('encode', p), decode: (p) => call('decode', p) };
}

async function main(): Promise<void> {
  const input: unknown = JSON.parse(readFileSync(process.argv[2], 'utf8'));
  const connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS ?? 'localhost:7233' });
  const endpoint = process.env.CAUSEWAY_CODEC_ENDPOINT;
  const payloadCodecs = endpoint ? [remoteCodec(endpoint, process.env.CAUSEWAY_CODEC_TOKEN ?? '')] : [];
  const client = new Client({ connection, namespace: process.env.TEMPORAL_NAMESPACE ?? 'default', dataConverter: { payloadCodecs } });
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
