import type { NatsConnection } from '@nats-io/transport-node';
import type { Client } from '@temporalio/client';
import { causewayHome, readEnv } from '../common/config';
import { connectNats } from '../common/nats';
import { connectTemporalClient } from '../common/temporal-connection';
import { readState, resolveEndpoints } from './dev/state';
import { lazyProtobuf } from './lazy-protobuf';
import { CliError, say } from './output';
import { CONNECT_PATIENCE_MS, retryConnect } from '../common/connect-retry';

export interface Session {
  client: Client;
  nc: NatsConnection;
  namespace: string;
  taskQueue: string;
  /** the Temporal UI's base URL, when known */
  uiUrl?: string;
  close(): Promise<void>;
}

/**
 * Connects to Temporal and NATS: TEMPORAL_ADDRESS / NATS_URL when set, else the running
 * dev stack; with `autoStart`, starts the embedded stack when there is neither.
 */
export async function openSession(opts: { autoStart: boolean }): Promise<Session> {
  lazyProtobuf();
  const env = readEnv();
  let endpoints = resolveEndpoints();
  if (!endpoints) {
    if (!opts.autoStart) {
      throw new CliError('no Causeway stack is running and TEMPORAL_ADDRESS / NATS_URL are not set', 'start one with `causeway dev up`');
    }
    say('no Causeway stack is configured or running: starting the embedded one (as `causeway dev up` does)');
    // Only here: starting a stack loads child_process, NATS's JetStream manager and more that connecting does not need.
    const { startStack } = require('./dev/stack') as typeof import('./dev/stack');
    const started = await startStack({ home: causewayHome(env), persistent: true, startWorker: true, log: (m) => say(`  ${m}`) });
    say(`  Temporal UI: ${started.temporal.uiUrl}  (stop it with \`causeway dev down\`)`);
    endpoints = { temporalAddress: started.temporal.address, natsUrl: started.nats.url };
  }
  // Both at once: on a loaded machine each handshake costs a few hundred ms of a one-step build (BENCHMARKS.md).
  const temporalAddress = endpoints.temporalAddress;
  const natsUrl = endpoints.natsUrl;
  const [temporalResult, natsResult] = await Promise.allSettled([
    retryConnect(
      `Temporal at ${temporalAddress}`,
      () =>
        connectTemporalClient({
          address: temporalAddress,
          namespace: env.TEMPORAL_NAMESPACE,
          home: causewayHome(env),
          connectTimeout: '5s',
        }),
      say,
    ),
    retryConnect(`NATS at ${natsUrl}`, () => connectNats(natsUrl, 'causeway-cli'), say),
  ]);
  if (temporalResult.status === 'rejected') {
    if (natsResult.status === 'fulfilled') await natsResult.value.close();
    throw new CliError(
      `cannot reach Temporal at ${temporalAddress} (tried for ${CONNECT_PATIENCE_MS / 1000} s): ${(temporalResult.reason as Error).message}`,
      'check `causeway dev status` or TEMPORAL_ADDRESS',
    );
  }
  const temporal = temporalResult.value;
  if (natsResult.status === 'rejected') {
    await temporal.connection.close();
    throw natsResult.reason;
  }
  const nc = natsResult.value;
  const uiUrl = env.CAUSEWAY_UI_URL ?? (env.TEMPORAL_ADDRESS ? undefined : readState(causewayHome(env))?.temporal.uiUrl);
  return {
    client: temporal.client,
    nc,
    namespace: env.TEMPORAL_NAMESPACE,
    taskQueue: env.CAUSEWAY_TASK_QUEUE,
    uiUrl,
    async close() {
      await nc.close();
      await temporal.connection.close();
    },
  };
}

/** Encoded: the UI answers a raw `:` (a job build's id, build-P:J:N) with a 500, and `%3A` with the build. */
export function buildUrl(session: Session, buildId: string): string | undefined {
  return session.uiUrl
    ? `${session.uiUrl}/namespaces/${encodeURIComponent(session.namespace)}/workflows/${encodeURIComponent(buildId)}`
    : undefined;
}

/** The Temporal UI tab where a run's step tree is (Current Details); the UI 2.42 shows it only there. */
export function stepTreeUrl(session: Session, buildId: string, runId: string): string | undefined {
  const url = buildUrl(session, buildId);
  return url ? `${url}/${runId}/user-metadata` : undefined;
}
