import type { Command } from 'commander';
import { lazy } from './lazy';

const impl = () => require('../commands/codec-server') as typeof import('../commands/codec-server');

export function registerCodecServer(program: Command): void {
  program
    .command('codec-server')
    .description("serve Temporal's remote codec endpoint, so the Temporal UI shows builds' payloads decrypted")
    .option('--listen <host:port>', 'where to listen', '127.0.0.1:8234')
    .option('--ui-origin <url...>', "origins allowed by CORS: the Temporal UI's", ['http://127.0.0.1:8233', 'http://localhost:8233'])
    .option('--token-file <file>', 'file holding the token clients must present (made if missing)')
    .option(
      '--idtoken-issuer <url>',
      "also serve this idtoken issuer's /.well-known/openid-configuration and jwks.json, under its path, to anyone (default: CAUSEWAY_IDTOKEN_ISSUER)",
    )
    .option(
      '--idtoken-keys <file>',
      "the workers' idtoken signing keys (default: CAUSEWAY_IDTOKEN_KEYS, else CAUSEWAY_HOME/idtoken-keys.json)",
    )
    .addHelpText(
      'after',
      `
The keys are the workers' (CAUSEWAY_CODEC_KEY, CAUSEWAY_CODEC_KEYS or CAUSEWAY_HOME/codec-keys.json).
A client presents the token as "Authorization: Bearer TOKEN" or as the first path segment
(http://HOST:PORT/TOKEN/decode: the form to give the UI, which sends no header of its own).
The token file is CAUSEWAY_HOME/codec-token (~/.causeway, or /var/lib/causeway for root).
\`causeway dev up\` starts one and points its Temporal UI at it, and makes it its workers' idtoken issuer.

Examples:
  causeway codec-server --listen 127.0.0.1:8234 --ui-origin https://temporal.example.com
  temporal workflow show -w build-… --codec-endpoint http://127.0.0.1:8234 --codec-auth "Bearer $(cat \${CAUSEWAY_HOME:-/var/lib/causeway}/codec-token)"`,
    )
    .action(lazy(() => impl().codecServerCommand));
}
