import type { Command } from 'commander';

// The Temporal CLI's connection flags (`temporal --help`) and NATS's, on every command. Each
// sets the environment variable of the same meaning, which is where common/ reads settings from,
// so a worker started with `causeway worker` and every client command see them alike.
const FLAGS: Array<[flag: string, env: string, help: string]> = [
  ['--tls', 'TEMPORAL_TLS', 'connect to Temporal with TLS'],
  ['--tls-cert-path <file>', 'TEMPORAL_TLS_CLIENT_CERT_PATH', 'client certificate for Temporal (mTLS)'],
  ['--tls-key-path <file>', 'TEMPORAL_TLS_CLIENT_KEY_PATH', "the client certificate's key"],
  ['--tls-ca-path <file>', 'TEMPORAL_TLS_SERVER_CA_CERT_PATH', "CA of Temporal's server certificate"],
  ['--tls-server-name <name>', 'TEMPORAL_TLS_SERVER_NAME', "name to check Temporal's certificate against"],
  ['--api-key <key>', 'TEMPORAL_API_KEY', 'Temporal API key'],
  ['--nats-creds <file>', 'NATS_CREDS', 'NATS JWT credentials file'],
  ['--nats-nkey <file>', 'NATS_NKEY', 'NATS nkey seed file'],
  ['--nats-tls-ca <file>', 'NATS_TLS_CA', "CA of NATS's server certificate"],
  ['--nats-tls-cert <file>', 'NATS_TLS_CERT', 'client certificate for NATS'],
  ['--nats-tls-key <file>', 'NATS_TLS_KEY', "the NATS client certificate's key"],
];

const optionKey = (flag: string) =>
  flag
    .replace(/^--/, '')
    .replace(/ .*$/, '')
    .replace(/-(\w)/g, (_, c: string) => c.toUpperCase());

export function addConnectionFlags(program: Command): void {
  for (const [flag, env, help] of FLAGS) program.option(flag, `${help} (${env})`);
  program.hook('preAction', () => {
    const opts = program.opts<Record<string, string | boolean | undefined>>();
    for (const [flag, env] of FLAGS) {
      const value = opts[optionKey(flag)];
      if (value !== undefined) process.env[env] = value === true ? 'true' : String(value);
    }
  });
}
