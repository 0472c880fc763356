// The embedded NATS's users and what each may do. Anonymous connections are refused; every
// role is an nkey user whose seed `causeway dev up` writes to CAUSEWAY_HOME/nats-auth (0600).
// The same permissions serve a production NATS: docs/security.md shows them as server config.
import fs from 'node:fs';
import path from 'node:path';
import { createUser, fromSeed } from '@nats-io/nkeys';
import { TRANSFER_BUCKET } from '../../common/transfer';
import { NATS_AUTH_DIR, nkeySeedFile, NatsRole } from '../../common/nats-auth';
import { BUILD_STREAM } from '../../schemas/messages';
import { WORKER_BUCKET } from '../../schemas/workers';

const REGISTRY_STREAM = `KV_${WORKER_BUCKET}`;
const TRANSFER_STREAM = `OBJ_${TRANSFER_BUCKET}`;

/** JetStream API subjects to read `stream` through consumers and direct gets (no writes, no admin). */
function readStream(stream: string): string[] {
  return [
    `$JS.API.STREAM.INFO.${stream}`,
    `$JS.API.STREAM.MSG.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}`,
    `$JS.API.DIRECT.GET.${stream}.>`,
    `$JS.API.CONSUMER.CREATE.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.INFO.${stream}.*`,
    `$JS.API.CONSUMER.DELETE.${stream}.*`,
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.*`,
    `$JS.ACK.${stream}.>`,
  ];
}

/** Also create, update and purge it: the stream's owner. */
function ownStream(stream: string): string[] {
  return [...readStream(stream), `$JS.API.STREAM.CREATE.${stream}`, `$JS.API.STREAM.UPDATE.${stream}`, `$JS.API.STREAM.PURGE.${stream}`];
}

interface Permissions {
  publish: { allow: string[] };
  subscribe: { allow: string[] };
  allow_responses?: boolean;
}

const COMMON_PUBLISH = ['$JS.API.INFO', '$JS.API.STREAM.NAMES', '$JS.FC.>'];
const INBOX = ['_INBOX.>'];

export const ROLE_PERMISSIONS: Record<Exclude<NatsRole, 'operator'>, Permissions> = {
  worker: {
    publish: {
      allow: [
        ...COMMON_PUBLISH,
        // a build's step logs, service logs and events: the only build subjects it writes
        'causeway.build.*.log.>',
        'causeway.build.*.service.>',
        'causeway.build.*.event',
        `$KV.${WORKER_BUCKET}.>`,
        `$O.${TRANSFER_BUCKET}.>`,
        ...ownStream(BUILD_STREAM),
        ...ownStream(REGISTRY_STREAM),
        ...ownStream(TRANSFER_STREAM),
      ],
    },
    // its control subject (land, retire) is published by an operator; it only answers
    subscribe: { allow: [...INBOX, 'causeway.worker.*.control'] },
    allow_responses: true,
  },
  watcher: {
    publish: { allow: [...COMMON_PUBLISH, ...readStream(BUILD_STREAM), ...readStream(REGISTRY_STREAM)] },
    subscribe: { allow: INBOX },
  },
};

/** Creates each role's seed (0600) if missing and returns the roles' public keys. */
function ensureSeeds(home: string): Record<NatsRole, string> {
  fs.mkdirSync(path.join(home, NATS_AUTH_DIR), { recursive: true, mode: 0o700 });
  const keys = {} as Record<NatsRole, string>;
  for (const role of NatsRole.options) {
    const file = nkeySeedFile(home, role);
    if (!fs.existsSync(file)) {
      const seed = new TextDecoder().decode(createUser().getSeed());
      try {
        fs.writeFileSync(file, `${seed}\n`, { mode: 0o600, flag: 'wx' });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    keys[role] = fromSeed(new TextEncoder().encode(fs.readFileSync(file, 'utf8').trim())).getPublicKey();
  }
  return keys;
}

/**
 * Writes the server's authorization config (JSON is valid NATS config) and the roles' seeds
 * into the home; returns the config file to pass with `-c`.
 */
export function writeNatsAuthConfig(home: string): string {
  const keys = ensureSeeds(home);
  const users = [
    { nkey: keys.operator },
    { nkey: keys.worker, permissions: ROLE_PERMISSIONS.worker },
    { nkey: keys.watcher, permissions: ROLE_PERMISSIONS.watcher },
  ];
  const file = path.join(home, NATS_AUTH_DIR, 'nats-server.conf');
  fs.writeFileSync(file, JSON.stringify({ authorization: { users } }, null, 2) + '\n', { mode: 0o600 });
  return file;
}

/** The Secret key and server variable holding each role's password in deploy/ (user/password: Kubernetes Secrets hand out env vars, not 0600 files). */
export const DEPLOY_PASSWORD_VARS: Record<NatsRole, string> = {
  operator: 'CAUSEWAY_NATS_OPERATOR_PASSWORD',
  worker: 'CAUSEWAY_NATS_WORKER_PASSWORD',
  watcher: 'CAUSEWAY_NATS_WATCHER_PASSWORD',
};

/**
 * deploy/nats's authorization block: the same users and permissions as the embedded stack,
 * with passwords the server reads from its environment (the causeway-nats Secret). NATS config
 * is JSON plus unquoted `$VAR` references, which is why they are unquoted after stringifying.
 */
export function deployAuthorizationConfig(): string {
  const users = NatsRole.options.map((role) => ({
    user: role,
    password: `$${DEPLOY_PASSWORD_VARS[role]}`,
    ...(role === 'operator' ? {} : { permissions: ROLE_PERMISSIONS[role] }),
  }));
  return `${JSON.stringify({ authorization: { users } }, null, 2).replace(/"(\$CAUSEWAY_NATS_[A-Z_]+)"/g, '$1')}\n`;
}
