// The worker's side of credentials: its cluster-wide manager, redaction and idtoken issuer, from
// the environment (CAUSEWAY_CREDS / CAUSEWAY_CREDS_FILE, CAUSEWAY_CREDS_TEAM, CAUSEWAY_REDACT_SECRETS,
// CAUSEWAY_IDTOKEN_ISSUER, CAUSEWAY_IDTOKEN_KEYS) or `causeway worker` flags, validated before
// the worker polls anything.
import fs from 'node:fs';
import YAML from 'yaml';
import { z } from 'zod';
import { CredentialResolver, storeFor, type WorkerCredentials } from '../activities/creds';
import type { Env } from '../common/config';
import { IdTokenIssuer, idtokenSettings } from '../common/idtoken';
import { CredentialManagerConfig, DEFAULT_TEAM, Team } from '../schemas/var-sources';

export interface CredentialFlags {
  /** a manager config file (`--creds-file`), over CAUSEWAY_CREDS_FILE and CAUSEWAY_CREDS */
  file?: string;
  team?: string;
  /** `--disable-redact-secrets` */
  noRedact?: boolean;
  /** `--idtoken-issuer`, over CAUSEWAY_IDTOKEN_ISSUER */
  idtokenIssuer?: string;
  /** `--idtoken-keys`, over CAUSEWAY_IDTOKEN_KEYS */
  idtokenKeys?: string;
}

export function workerCredentials(env: Env, flags: CredentialFlags = {}): WorkerCredentials {
  const team = Team.safeParse(flags.team ?? env.CAUSEWAY_CREDS_TEAM ?? DEFAULT_TEAM);
  if (!team.success) throw new Error(`CAUSEWAY_CREDS_TEAM / --team: ${team.error.issues[0].message}`);
  const redact = !flags.noRedact && env.CAUSEWAY_REDACT_SECRETS === 'true';
  const settings = idtokenSettings(env, { issuer: flags.idtokenIssuer, keys: flags.idtokenKeys });
  const idtoken = settings ? { idtoken: new IdTokenIssuer(settings.issuer, settings.keysFile) } : {};
  const file = flags.file ?? env.CAUSEWAY_CREDS_FILE;
  let text: string | undefined;
  let where = 'CAUSEWAY_CREDS';
  if (file) {
    where = file;
    const mode = statMode(file);
    // It may hold a Vault token, as the codec keys file holds keys: refused when others may read it.
    if (mode & 0o077) throw new Error(`${file}: credential manager config is readable by others (mode ${mode.toString(8)}); chmod 600 it`);
    text = fs.readFileSync(file, 'utf8');
  } else text = env.CAUSEWAY_CREDS;
  if (text === undefined) return { team: team.data, redact, ...idtoken };
  let raw: unknown;
  try {
    raw = YAML.parse(text);
  } catch (err) {
    throw new Error(`${where}: not YAML or JSON: ${(err as Error).message}`, { cause: err });
  }
  const parsed = CredentialManagerConfig.safeParse(raw);
  if (!parsed.success) throw new Error(`${where}: ${z.prettifyError(parsed.error)}`);
  return { team: team.data, redact, ...idtoken, cluster: storeFor(parsed.data) };
}

function statMode(file: string): number {
  try {
    return fs.statSync(file).mode & 0o777;
  } catch (err) {
    throw new Error(`cannot read credential manager config ${file}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Looks up each credential ref in the cluster-wide manager `env` names, as a worker would for
 * pipeline `pipeline` (set-pipeline --check-creds); throws naming every one found nowhere, where
 * the file uses it. Undefined when `env` names no manager.
 */
export async function checkClusterRefs(
  env: Env,
  pipeline: string,
  refs: { ref: string; at: string }[],
): Promise<{ manager: string } | undefined> {
  const creds = workerCredentials(env);
  if (!creds.cluster) return undefined;
  await new CredentialResolver(creds, pipeline).check(refs);
  return { manager: creds.cluster.describe };
}
