// Clients and workers against a real Temporal server that requires a client certificate
// (`temporal server start-dev` cannot: it has no TLS flags). The server is built once from the
// Go module proxy by scripts/temporal-server.sh; certificates are made here with openssl.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { NativeConnection } from '@temporalio/worker';
import Long from 'long';
import { freePort, repoRoot } from '../../cli/dev/stack';
import { connectTemporalClient, temporalSecurity } from '../../common/temporal-connection';
import { makeCertificates } from './test-certs';

jest.setTimeout(20 * 60_000); // the first run builds the server

let dir: string;
let server: ChildProcess;
let address: string;
let withCert: NodeJS.ProcessEnv;
let withoutCert: NodeJS.ProcessEnv;

function config(ports: number[]): string {
  const [grpc, http, ...rest] = ports;
  const svc = (g: number, m: number) => `{rpc: {grpcPort: ${g}, membershipPort: ${m}, bindOnLocalHost: true}}`;
  const sqlite = (db: string) =>
    `{sql: {pluginName: sqlite, databaseName: ${db}, connectAddr: localhost, connectProtocol: tcp, connectAttributes: {mode: memory, cache: private}, maxConns: 1, maxIdleConns: 1, maxConnLifetime: 1h}}`;
  return `log: {stdout: true, level: warn}
persistence:
  defaultStore: sqlite-default
  visibilityStore: sqlite-visibility
  numHistoryShards: 1
  datastores:
    sqlite-default: ${sqlite('default')}
    sqlite-visibility: ${sqlite('default-visibility')}
global:
  membership: {maxJoinDuration: 30s, broadcastAddress: 127.0.0.1}
  tls:
    frontend:
      server: {certFile: ${dir}/server.pem, keyFile: ${dir}/server.key, clientCaFiles: [${dir}/ca.pem], requireClientAuth: true}
      client: {serverName: localhost, rootCaFiles: [${dir}/ca.pem]}
services:
  frontend: {rpc: {grpcPort: ${grpc}, membershipPort: ${rest[0]}, bindOnLocalHost: true, httpPort: ${http}}}
  matching: ${svc(rest[1]!, rest[2]!)}
  history: ${svc(rest[3]!, rest[4]!)}
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active: {enabled: true, initialFailoverVersion: 1, rpcName: frontend, rpcAddress: "127.0.0.1:${grpc}", httpAddress: "127.0.0.1:${http}"}
dcRedirectionPolicy: {policy: noop}
`;
}

beforeAll(async () => {
  const binary = execFileSync('bash', [path.join(repoRoot(), 'scripts', 'temporal-server.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-tls-'));
  makeCertificates(dir, 'causeway-test-ca', [
    { name: 'server', ext: 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' },
    { name: 'client', ext: 'extendedKeyUsage=clientAuth\n' },
  ]);
  const ports: number[] = [];
  for (let i = 0; i < 7; i++) ports.push(await freePort());
  fs.mkdirSync(path.join(dir, 'config'));
  fs.writeFileSync(path.join(dir, 'config', 'development.yaml'), config(ports));
  address = `127.0.0.1:${ports[0]}`;
  // Only the services a client talks to: the system worker would need a certificate of its own.
  server = spawn(
    binary,
    [
      '--root',
      dir,
      '--config',
      'config',
      '--env',
      'development',
      '--allow-no-auth',
      'start',
      '--service',
      'frontend',
      '--service',
      'history',
      '--service',
      'matching',
    ],
    {
      stdio: ['ignore', fs.openSync(path.join(dir, 'server.log'), 'a'), fs.openSync(path.join(dir, 'server.log'), 'a')],
    },
  );
  const ca = path.join(dir, 'ca.pem');
  withoutCert = { TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca, TEMPORAL_TLS_SERVER_NAME: 'localhost' };
  withCert = {
    ...withoutCert,
    TEMPORAL_TLS_CLIENT_CERT_PATH: path.join(dir, 'client.pem'),
    TEMPORAL_TLS_CLIENT_KEY_PATH: path.join(dir, 'client.key'),
  };
  for (let attempt = 0; ; attempt++) {
    try {
      const { connection } = await connectTemporalClient({ address, env: withCert, connectTimeout: '2s' });
      await connection.close();
      return;
    } catch (err) {
      if (attempt > 120 || server.exitCode !== null)
        throw new Error(
          `Temporal with mTLS did not start: ${(err as Error).message}\n${fs.readFileSync(path.join(dir, 'server.log'), 'utf8').slice(-2000)}`,
          { cause: err },
        );
      await sleep(500);
    }
  }
});

afterAll(async () => {
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('a client with a certificate is served; without one, or without TLS, it is refused', async () => {
  const { client, connection } = await connectTemporalClient({ address, env: withCert });
  try {
    await connection.workflowService.registerNamespace({
      namespace: 'default',
      workflowExecutionRetentionPeriod: { seconds: Long.fromNumber(86400) },
    });
    const { namespaces } = await client.workflowService.listNamespaces({});
    expect(namespaces?.map((n) => n.namespaceInfo?.name)).toContain('default');
  } finally {
    await connection.close();
  }
  const refused = (env: NodeJS.ProcessEnv) =>
    connectTemporalClient({ address, env, connectTimeout: '5s' }).then(
      () => 'connected',
      (err: Error) => err.message,
    );
  const noCert = await refused(withoutCert);
  const plain = await refused({});
  // grpc-js reports a refused handshake only as "Failed to connect before the deadline".
  expect(noCert).not.toBe('connected');
  expect(plain).not.toBe('connected');
});

test("a worker's connection, from the same variables", async () => {
  const connection = await NativeConnection.connect({ address, ...temporalSecurity(withCert) });
  await connection.close();
  const noCert = await NativeConnection.connect({ address, ...temporalSecurity(withoutCert) }).then(
    () => 'connected',
    (err: Error) => err.message,
  );
  // The server's refusal reaches the client as the TLS alert or, when the server closes first,
  // as a closed connection (a broken pipe or a cancelled call, each seen in CI): no connection.
  expect(noCert).toMatch(/CertificateRequired|connection closed|broken pipe/);
});

test('settings that cannot work fail before connecting, saying which', () => {
  expect(() => temporalSecurity({ TEMPORAL_TLS_CLIENT_CERT_PATH: '/nonexistent.pem' })).toThrow(
    /TEMPORAL_TLS_CLIENT_CERT: cannot read \/nonexistent.pem/,
  );
  expect(() => temporalSecurity({ TEMPORAL_TLS_CLIENT_CERT_DATA: 'x' })).toThrow(/needs its key/);
  expect(temporalSecurity({ TEMPORAL_API_KEY: 'k' })).toEqual({ tls: {}, apiKey: 'k' });
});
