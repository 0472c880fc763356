// NODE_EXTRA_CA_CERTS for a client command started from the snapshot: Node does not read it at
// start (cli/extra-ca.ts), yet a TLS connection trusts its certificates as Node's would. The
// server here is a TLS listener with a certificate of a private CA that records whether the
// CLI's handshake (its Temporal connection) trusted it; the CLI then retries, and is stopped.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import { CAUSEWAY_BIN, requireBuiltCli } from './cli-runner';
import { makeCertificates } from './test-certs';

let dir: string;
let server: tls.Server;
let port: number;
/** Every connection the CLI made: nothing reads them, so they never see its end, and would keep the server open. */
const sockets = new Set<import('node:net').Socket>();

beforeAll(async () => {
  requireBuiltCli();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-extra-ca-'));
  makeCertificates(dir, 'causeway-extra-ca', [{ name: 'server', ext: 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' }]);
  server = tls.createServer({
    key: fs.readFileSync(path.join(dir, 'server.key')),
    cert: fs.readFileSync(path.join(dir, 'server.pem')),
    ALPNProtocols: ['h2'],
  });
  server.on('connection', (socket) => sockets.add(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  // Bounded: a connection the kernel has not yet reported closed must not hold the suite.
  await Promise.race([new Promise((resolve) => server?.close(resolve)), sleep(5000, undefined, { ref: false })]);
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** The first handshake's outcome at the server, and the CLI's environment as Node started with it. */
async function handshake(extraCa: boolean): Promise<{ outcome: string; environ: string[] }> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TEMPORAL_ADDRESS: `127.0.0.1:${port}`,
    TEMPORAL_TLS: 'true',
    TEMPORAL_TLS_SERVER_NAME: 'localhost',
  };
  // grpc-js would take this file as its roots instead of Node's; unset, Node's roots apply.
  delete env.GRPC_DEFAULT_SSL_ROOTS_FILE_PATH;
  delete env.NODE_OPTIONS;
  delete env.NODE_EXTRA_CA_CERTS;
  if (extraCa) env.NODE_EXTRA_CA_CERTS = path.join(dir, 'ca.pem');
  const child = spawn(CAUSEWAY_BIN, ['builds'], { env, stdio: 'ignore' });
  try {
    const outcome = await new Promise<string>((resolve) => {
      const trusted = () => resolve('trusted');
      const refused = (err: Error) => resolve(`refused: ${err.message}`);
      server.once('secureConnection', trusted);
      server.once('tlsClientError', refused);
      child.once('exit', (code) => resolve(`the CLI exited ${code} before a handshake`));
    });
    server.removeAllListeners('secureConnection').removeAllListeners('tlsClientError');
    const environ = fs.readFileSync(`/proc/${child.pid}/environ`, 'utf8').split('\0');
    return { outcome, environ };
  } finally {
    const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }
}

test('the certificates of NODE_EXTRA_CA_CERTS are trusted, though Node did not read them at start', async () => {
  const { outcome, environ } = await handshake(true);
  expect(outcome).toBe('trusted');
  // Started from the snapshot, Node had the file's name under the CLI's own name only.
  expect(environ).toContain(`CAUSEWAY_EXTRA_CA_CERTS=${path.join(dir, 'ca.pem')}`);
  expect(environ.some((e) => e.startsWith('NODE_EXTRA_CA_CERTS='))).toBe(false);
});

test('without them, the private CA is not trusted', async () => {
  const { outcome } = await handshake(false);
  expect(outcome).toMatch(/^refused: /);
});
