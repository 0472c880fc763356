import path from 'node:path';
import type { Command } from 'commander';
import { codecServer } from '../../common/codec-server';
import { AesGcmPayloadCodec, CODEC_TOKEN_FILE, loadCodecKeys, secretFile } from '../../common/codec';
import { causewayHome, readEnv } from '../../common/config';
import { CliError, say } from '../output';

export function registerCodecServer(program: Command): void {
  program
    .command('codec-server')
    .description("serve Temporal's remote codec endpoint, so the Temporal UI shows builds' payloads decrypted")
    .option('--listen <host:port>', 'where to listen', '127.0.0.1:8234')
    .option('--ui-origin <url...>', "origins allowed by CORS: the Temporal UI's", ['http://127.0.0.1:8233', 'http://localhost:8233'])
    .option('--token-file <file>', 'file holding the token clients must present (made if missing)')
    .addHelpText(
      'after',
      `
The keys are the workers' (CAUSEWAY_CODEC_KEY, CAUSEWAY_CODEC_KEYS or CAUSEWAY_HOME/codec-keys.json).
A client presents the token as "Authorization: Bearer TOKEN" or as the first path segment
(http://HOST:PORT/TOKEN/decode: the form to give the UI, which sends no header of its own).
\`causeway dev up\` starts one and points its Temporal UI at it.

Examples:
  causeway codec-server --listen 127.0.0.1:8234 --ui-origin https://temporal.example.com
  temporal workflow show -w build-… --codec-endpoint http://127.0.0.1:8234 --codec-auth "Bearer $(cat ~/.causeway/codec-token)"`,
    )
    .action(async (opts: { listen: string; uiOrigin: string[]; tokenFile?: string }) => {
      const env = readEnv();
      const keys = loadCodecKeys({ env });
      if (!keys)
        throw new CliError(
          'no payload codec key is configured',
          "set CAUSEWAY_CODEC_KEYS to the workers' keys file, or start the dev stack (`causeway dev up`), which makes one",
        );
      const match = /^(.+):(\d+)$/.exec(opts.listen);
      if (!match) throw new CliError(`--listen ${opts.listen}: expected HOST:PORT`);
      const token = secretFile(opts.tokenFile ?? path.join(causewayHome(env), CODEC_TOKEN_FILE), true);
      const server = codecServer({ codec: new AesGcmPayloadCodec(keys), token, origins: opts.uiOrigin });
      await new Promise<void>((resolve, reject) => {
        server.once('error', (err) => reject(new CliError(`cannot listen on ${opts.listen}: ${err.message}`)));
        server.listen(Number(match[2]), match[1], resolve);
      });
      say(`codec server on http://${opts.listen} (CORS for ${opts.uiOrigin.join(', ')})`);
      for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => server.close());
    });
}
