// Concourse's `idtoken` var source (atc/creds/idtoken/): no store, but one var, `token`, a JWT
// the worker signs with the installation's key, naming the build's team, pipeline, instance
// vars and job, so a pipeline can log in to Vault, AWS or Azure as itself.
import { type IdTokenIssuer, signJwt } from '../../common/idtoken';
import { formatInstanceVars, type InstanceVars } from '../../schemas/instance-vars';
import { parseDuration } from '../../schemas/units';
import type { IdTokenConfig } from '../../schemas/var-sources';
import { StepErrored } from '../errors';
import type { SecretLookup, SecretStore } from './types';

/** Concourse's creds.SecretLookupParams: who the token is for. */
export interface TokenSubject {
  team: string;
  pipeline: string;
  instanceVars?: InstanceVars;
  /** empty in a build of no job (a check, a one-off build), as Concourse's */
  job: string;
}

const escapeSlashes = (s: string) => s.replaceAll('/', '%2F');

/** Concourse's TokenGenerator.generateSubject: the parts subject_scope names, each `/` in them written %2F. */
export function tokenSubject(scope: IdTokenConfig['subject_scope'], who: TokenSubject): string {
  const team = escapeSlashes(who.team);
  const pipeline = escapeSlashes(who.pipeline);
  const vars = escapeSlashes(formatInstanceVars(who.instanceVars ?? {}));
  switch (scope) {
    case 'team':
      return team;
    case 'instance':
      return `${team}/${pipeline}/${vars}`;
    case 'job':
      return `${team}/${pipeline}/${vars}/${escapeSlashes(who.job)}`;
    default:
      return `${team}/${pipeline}`;
  }
}

/** The claims of a token issued at `now` (ms); `aud` a string when it is one, as go-jose's jwt.Audience marshals. */
export function tokenClaims(config: IdTokenConfig, issuer: string, who: TokenSubject, now: number): Record<string, unknown> {
  const aud = config.audience ?? [];
  const vars = who.instanceVars && Object.keys(who.instanceVars).length > 0 ? { instance_vars: who.instanceVars } : {};
  return {
    ...(aud.length > 0 ? { aud: aud.length === 1 ? aud[0] : aud } : {}),
    exp: Math.floor((now + parseDuration(config.expires_in)) / 1000),
    iat: Math.floor(now / 1000),
    ...vars,
    iss: issuer,
    job: who.job,
    pipeline: who.pipeline,
    sub: tokenSubject(config.subject_scope, who),
    team: who.team,
  };
}

export class IdTokenStore implements SecretStore {
  readonly describe = 'idtoken';

  constructor(
    private readonly source: string,
    private readonly config: IdTokenConfig,
    private readonly who: TokenSubject,
    private readonly issuer: IdTokenIssuer | undefined,
    /** the build's id, under which the issuer keeps the tokens its steps got (earlier()); none for a check */
    private readonly build?: string,
  ) {}

  lookupPaths(_team: string, _pipeline: string, name: string): string[] {
    return [name];
  }

  async get(path: string): Promise<SecretLookup> {
    if (path !== 'token')
      throw new StepErrored(
        `var source \`${this.source}\` is an idtoken, whose only var is \`token\`: ((${this.source}:token))`,
        'UndefinedVar',
      );
    if (!this.issuer)
      throw new StepErrored(
        `var source \`${this.source}\` (idtoken): this worker has no idtoken issuer; start it with --idtoken-issuer URL (CAUSEWAY_IDTOKEN_ISSUER), the URL verifiers fetch /.well-known/openid-configuration from (docs/security.md)`,
        'BadVarSource',
      );
    const key = this.issuer.signingKey(this.config.algorithm);
    const claims = tokenClaims(this.config, this.issuer.issuer, this.who, Date.now());
    const token = signJwt(key, claims);
    if (this.build !== undefined) this.issuer.remember(this.build, token, (claims.exp as number) * 1000);
    return { found: true, value: token };
  }

  earlier(): string[] {
    return this.build !== undefined && this.issuer ? this.issuer.issued(this.build) : [];
  }
}
