import path from 'node:path';
import { codecServer } from '../../common/codec-server';
import { AesGcmPayloadCodec, CODEC_TOKEN_FILE, loadCodecKeys, secretFile } from '../../common/codec';
import { causewayHome, readEnv } from '../../common/config';
import { ensureIdTokenKeys, idtokenSettings } from '../../common/idtoken';
import { CliError, say } from '../output';

interface Opts {
  listen: string;
  uiOrigin: string[];
  tokenFile?: string;
  idtokenIssuer?: string;
  idtokenKeys?: string;
}

export async function codecServerCommand(opts: Opts): Promise<void> {
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
  let idtoken: ReturnType<typeof idtokenSettings>;
  try {
    idtoken = idtokenSettings(env, { issuer: opts.idtokenIssuer, keys: opts.idtokenKeys });
    // Made (or checked) now: a keys file others can read fails the start, not each request.
    if (idtoken) ensureIdTokenKeys(idtoken.keysFile);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
  const server = codecServer({ codec: new AesGcmPayloadCodec(keys), token, origins: opts.uiOrigin, idtoken });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new CliError(`cannot listen on ${opts.listen}: ${err.message}`)));
    server.listen(Number(match[2]), match[1], resolve);
  });
  say(`codec server on http://${opts.listen} (CORS for ${opts.uiOrigin.join(', ')})`);
  if (idtoken) say(`idtoken issuer ${idtoken.issuer}: /.well-known/openid-configuration and jwks.json (keys ${idtoken.keysFile})`);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => server.close());
}
