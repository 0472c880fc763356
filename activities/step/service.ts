// A service's activities above its runtime, the same for every runtime, as a task's are
// (task.ts): its config resolved (the service file read through the runtime, which refuses
// links out of the artifact), its credential refs looked up here and never in the workflow,
// and every value its log must not show handed to the runtime as `redact`. The start returns
// the refs it used (text only); the later activities look their values up again to redact them.
import { Context } from '@temporalio/activity';
import { parseServiceConfig } from '../../schemas/services';
import type { ServiceConfig } from '../../schemas/compiled';
import { asStrings, CredentialResolver } from '../creds';
import { NO_CREDENTIALS, type ActivityDeps } from '../deps';
import { ServiceFailed, StepErrored } from '../errors';
import { heartbeating } from '../heartbeat';
import type { ResolvedServiceRequest, Runtime } from '../runtime/types';
import type { ServiceRef, StartServiceRequest, StartServiceResult } from '../types';
import { stringifyVar, type VarRef } from '../../schemas/interpolate';
import { artifactFile, readArtifactText } from './task-config';

export interface ServiceActivities {
  startService(req: StartServiceRequest): Promise<StartServiceResult>;
  probeService: Runtime['services']['probeService'];
  superviseService: Runtime['services']['superviseService'];
  stopService: Runtime['services']['stopService'];
}

export function serviceActivities(deps: ActivityDeps, runtime: Runtime): ServiceActivities {
  const credentials = deps.credentials ?? NO_CREDENTIALS;
  const resolver = (ref: ServiceRef, plan: string) => new CredentialResolver(credentials, plan, ref.varSources, ref.buildId);
  /** The request with every value to redact: load_var values in scope and the credentials found. */
  const redacting = <T extends ServiceRef>(req: T, creds: CredentialResolver): T => {
    const redact = credentials.redact ? [...(req.redact ?? []), ...creds.values] : undefined;
    return { ...req, redact: redact?.length ? redact : undefined };
  };
  /** The later activities: the refs the start found, looked up again so their values are redacted. */
  const later =
    <T extends ServiceRef, R>(run: (req: T) => Promise<R>) =>
    async (req: T): Promise<R> => {
      const creds = resolver(req, req.plan ?? '');
      if (req.credentials?.length) await lookingUp(() => creds.recall(req.credentials ?? []));
      return redactErrors(creds, () => run(redacting(req, creds)));
    };
  return {
    async startService(req) {
      const creds = resolver(req, req.plan);
      return redactErrors(creds, async () => {
        const resolved = await lookingUp(() => resolveService(runtime, req, creds));
        const started = await runtime.services.startService(redacting(resolved, creds));
        return creds.found.size > 0 ? { ...started, credentials: [...creds.found] } : started;
      });
    },
    probeService: later((req) => runtime.services.probeService(req)),
    superviseService: later((req) => runtime.services.superviseService(req)),
    // No lookups at teardown (a manager that is down must not keep a service running): its notes quote no values.
    stopService: (req) => runtime.services.stopService(credentials.redact ? req : { ...req, redact: undefined }),
  };
}

/** A credential manager may be slow: heartbeats meanwhile, keeping the details (log offsets) a retry resumes from. */
function lookingUp<T>(work: () => Promise<T>): Promise<T> {
  const ctx = Context.current();
  return heartbeating(work, () => ctx.info.heartbeatDetails);
}

/** Errors are redacted as logs are (a failed start quotes the service's output). */
async function redactErrors<T>(creds: CredentialResolver, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof Error) err.message = creds.redactMessage(err.message);
    throw err;
  }
}

/**
 * The service's config inline (its file read from its artifact) with its credential refs
 * resolved; a config from a file also gives the service's own ports, which the workflow
 * could not know, so ((.svc:NAME.port)) of itself resolves as in an inline config.
 */
export async function resolveService(
  runtime: Pick<Runtime, 'readArtifactFile'>,
  req: StartServiceRequest,
  creds: CredentialResolver,
): Promise<ResolvedServiceRequest> {
  const what = `service ${req.name}`;
  let { address, scope } = req;
  let config = req.spec.config;
  if (!config) {
    config = await serviceFile(runtime, req, creds);
    const ports = Object.fromEntries(config.ports.map((p) => [p.name, p.number]));
    const names = Object.keys(ports);
    address = { ...address, ports, primaryPort: names.includes('default') ? 'default' : names[0] };
    scope = { ...scope, [req.name]: address };
  }
  const { value, missing } = await creds.interpolate({ params: req.spec.params, config });
  throwMissing(what, missing, creds);
  const run = { ...value.config.run, path: stringifyVar(value.config.run.path), args: asStrings(value.config.run.args) };
  return {
    ...req,
    address,
    scope,
    spec: { ...req.spec, params: asStrings(value.params), config: { ...value.config, params: asStrings(value.config.params), run } },
  };
}

async function serviceFile(
  runtime: Pick<Runtime, 'readArtifactFile'>,
  req: StartServiceRequest,
  creds: CredentialResolver,
): Promise<ServiceConfig> {
  const what = `service ${req.name}`;
  const file = req.spec.file;
  if (!file) throw new ServiceFailed(`${what}: neither config nor file is set`);
  try {
    const text = await readArtifactText(runtime, artifactFile(req.buildId, file, req.artifacts, what), `${what}: file ${file}`);
    return parseServiceConfig({ text, file, service: req.name, credentials: creds.deferring });
  } catch (err) {
    throw new ServiceFailed(err instanceof StepErrored ? err.message : `${what}: ${(err as Error).message}`);
  }
}

function throwMissing(what: string, missing: VarRef[], creds: CredentialResolver): void {
  if (missing.length === 0) return;
  const seen = [...new Map(missing.map((r) => [r.raw, r])).values()];
  throw new ServiceFailed(seen.map((r) => `${what}: undefined var \`${r.raw}\`: ${creds.explain(r)}`).join('\n'));
}
