// NODE_EXTRA_CA_CERTS, read when a TLS connection needs it instead of at Node's start. Node 20
// parses the whole file before any code runs (a system bundle is ~140 certificates): ~55 of the
// ~80 ms `node -e 0` takes on a machine that sets it, paid by every command, though the dev
// stack's connections are plain TCP. For a client command started from the snapshot, bin/causeway's
// launcher hands the variable over as CAUSEWAY_EXTRA_CA_CERTS (dist/cli/client.snapshot.sh);
// this puts it back for child processes and gives every TLS context made without a `ca` of its
// own Node's roots and those certificates, which is what Node would have given it.
import fs from 'node:fs';

/** `loadTls` loads node:tls, only when there is a file (the snapshot cannot hold that module). */
export function deferredExtraCaCerts(env: NodeJS.ProcessEnv, loadTls: () => typeof import('node:tls')): void {
  const file = env.CAUSEWAY_EXTRA_CA_CERTS;
  if (file === undefined) return;
  const tls = loadTls();
  delete env.CAUSEWAY_EXTRA_CA_CERTS;
  env.NODE_EXTRA_CA_CERTS = file;
  let ca: string[] | undefined;
  const roots = (): string[] => {
    if (ca) return ca;
    try {
      ca = [...tls.rootCertificates, fs.readFileSync(file, 'utf8')];
    } catch (err) {
      // Node's own words when it cannot load the file at start; it goes on with its roots.
      process.emitWarning(`Ignoring extra certs from \`${file}\`, load failed: ${(err as Error).message}`);
      ca = [...tls.rootCertificates];
    }
    return ca;
  };
  const createSecureContext = tls.createSecureContext;
  // tls.connect (and so https, grpc-js and NATS) makes its context through this export.
  tls.createSecureContext = (options) => createSecureContext(options?.ca === undefined ? { ...options, ca: roots() } : options);
}
