// The pipeline workflow's side effects: running a resource type's `check`, starting a job's
// build workflow, and asking which job builds ended. Each is idempotent: a check only reads,
// a build start with an id that exists is refused by Temporal and taken as done, and an
// outcome is read from visibility-free describe calls.
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { ApplicationFailure, TypedSearchAttributes } from '@temporalio/common';
import { buildStatusOf } from '../common/build-client';
import { CausewayBuildNumber, CausewayJob, CausewayPipeline, CausewayStatus } from '../common/search-attributes';
import { BUILD_WORKFLOW, type BuildInput, type BuildSummary } from '../schemas/build';
import { DEFAULT_CHECK_TIMEOUT_MS } from '../schemas/check-defaults';
import type { ResourceVersion } from '../schemas/compiled';
import { formatPipelineRef } from '../schemas/instance-vars';
import {
  abandonedBy,
  PIPELINE_QUERIES,
  pipelineNameOf,
  pipelineWorkflowId,
  type BuildOutcome,
  PipelineEndSchema,
  type PipelineView,
} from '../schemas/pipeline-api';
import { CredentialResolver, resolveResourceRequest } from './creds';
import { NO_CREDENTIALS, type ActivityDeps } from './deps';
import { StepErrored } from './errors';
import { containerWorker, runImageCheck } from './image-check';
import { checkId, runHostCheck } from './runtime/local/check';
import type { RunResult } from './runtime/local/spawner';
import type { Runtime } from './runtime/types';
import { canIsolate } from './runtime/local/isolation';
import type { PipelineActivities } from './types';

/** The failure type of a check that ran and failed: the workflow records it and checks again at the next interval. */
export const CHECK_FAILED = 'CheckFailed';
/** The stderr kept for the error of a failed check. */
const STDERR_TAIL = 2_000;

/**
 * What the pipeline's activities need of the worker: `credentials` are its cluster-wide manager
 * and redaction, for the refs in a resource's source; the rest and `runtime` for checks of image
 * types (in a container) and for finding a worker that runs containers.
 */
export type PipelineDeps = Pick<ActivityDeps, 'home'> & Partial<ActivityDeps>;

/** How long a parent pipeline has to answer whether it still sets a pipeline (else: asked again later). */
const PARENT_QUERY_MS = 10_000;
/** Renames of a parent followed at most: a loop of them is not followed forever. */
const MAX_RENAMES = 10;

export function pipelineActivities(deps: PipelineDeps, runtime?: Runtime): PipelineActivities {
  const credentials = deps.credentials ?? NO_CREDENTIALS;
  const full = (): ActivityDeps & { runtime: Runtime } => {
    if (!runtime || !deps.nc || !deps.workerName || !deps.log) throw new Error('image-type checks need a worker with a runtime and NATS');
    return { ...(deps as ActivityDeps), runtime };
  };
  let warned = false;
  return {
    async checkResource(req) {
      if (!canIsolate() && !warned) {
        warned = true;
        deps.log?.warn(
          `the worker runs as uid ${process.getuid?.()}, not root: pipelines' checks run as the worker's own user, with its environment and all it can read (docs/security.md)`,
        );
      }
      // An instance's vars are looked up under its pipeline's name, as Concourse's.
      const creds = new CredentialResolver(credentials, pipelineNameOf(req.pipeline), req.varSources);
      try {
        return await checkResource(req, creds, (request) => {
          const type = req.resource.type;
          const timeoutMs = req.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
          if (type.kind === 'host' && (runtime?.runsHostScripts ?? true)) {
            const input = JSON.stringify(request);
            return runHostCheck({
              home: deps.home,
              id: checkId(req.pipeline, req.resource.name),
              file: path.join(type.dir, 'check'),
              input,
              timeoutMs,
            });
          }
          const d = full();
          return runImageCheck(d, d.runtime, { pipeline: req.pipeline, resource: req.resource, request, timeoutMs, creds });
        });
      } catch (err) {
        // A check's stderr may print its source: its values never reach the pipeline's history.
        if (err instanceof Error) err.message = creds.redactMessage(err.message);
        throw err;
      }
    },
    async containerWorker(req) {
      const d = full();
      try {
        return await containerWorker(d, d.runtime, req);
      } catch (err) {
        if (err instanceof StepErrored) throw ApplicationFailure.create({ type: CHECK_FAILED, nonRetryable: true, message: err.message });
        throw err;
      }
    },
    async startJobBuild({ workflowId, taskQueue, pipeline, instanceVars, job, number, plan }) {
      const input: BuildInput = { plan, uploads: [], downloads: [] };
      try {
        await Context.current().client.workflow.start(BUILD_WORKFLOW, {
          taskQueue,
          workflowId,
          args: [input],
          // A build id is used once: a retried start after a crash finds it and does nothing.
          workflowIdReusePolicy: 'REJECT_DUPLICATE',
          staticSummary: `${formatPipelineRef({ name: pipelineNameOf(pipeline), instanceVars })}/${job} #${number}`,
          typedSearchAttributes: new TypedSearchAttributes([
            { key: CausewayPipeline, value: pipeline },
            { key: CausewayJob, value: job },
            { key: CausewayBuildNumber, value: String(number) },
          ]),
        });
      } catch (err) {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      }
    },

    async abandoned({ setBy }) {
      const client = Context.current().client;
      let key = setBy.pipeline;
      // A parent renamed since goes on under its new key (its end says which).
      for (let hop = 0; hop < MAX_RENAMES; hop++) {
        const handle = client.workflow.getHandle(pipelineWorkflowId(key));
        try {
          if ((await handle.describe()).status.name === 'RUNNING')
            return abandonedBy(
              setBy,
              await client.withDeadline(Date.now() + PARENT_QUERY_MS, () => handle.query<PipelineView>(PIPELINE_QUERIES.view)),
            );
          const end = PipelineEndSchema.safeParse(await handle.result().catch(() => undefined)).data;
          if (!end?.renamedTo) return `pipeline ${key}, which set it, was ${end?.archived ? 'archived' : 'destroyed'}`;
          key = end.renamedTo;
        } catch (err) {
          if ((err as Error).name === 'WorkflowNotFoundError') return `pipeline ${key}, which set it, is gone`;
          return undefined;
        }
      }
      return undefined;
    },

    async buildOutcomes({ workflowIds }) {
      const client = Context.current().client;
      const ended: Record<string, BuildOutcome> = {};
      for (const id of workflowIds) {
        const handle = client.workflow.getHandle<(input: BuildInput) => Promise<BuildSummary>>(id);
        const d = await handle.describe();
        if (d.status.name === 'RUNNING') continue;
        const status = buildStatusOf(d.typedSearchAttributes.get(CausewayStatus), d.status.name);
        if (status !== 'succeeded') {
          ended[id] = { status: status === 'failed' || status === 'aborted' ? status : 'errored', outputs: [] };
          continue;
        }
        // Only a succeeded build's outputs count for `passed`; its result lists the versions its puts made.
        const summary = await handle.result();
        const outputs = summary.steps.flatMap((s) => (s.kind === 'put' && s.resource ? [s.resource] : []));
        ended[id] = { status, outputs: outputs.map((r) => ({ resource: r.name, version: r.version })) };
      }
      return ended;
    },
  };
}

/** Runs the type's `check` (`run`: on the host, or in a container) with the resource's source, its credential refs resolved in the parsed value. */
async function checkResource(
  { resource, from, timeoutMs = DEFAULT_CHECK_TIMEOUT_MS }: Parameters<PipelineActivities['checkResource']>[0],
  creds: CredentialResolver,
  run: (request: { source: Record<string, unknown>; version: ResourceVersion | null }) => Promise<RunResult>,
): Promise<ResourceVersion[]> {
  let out: RunResult;
  try {
    const request = await resolveResourceRequest(creds, resource, { source: resource.source, version: from });
    out = await run(request);
  } catch (err) {
    // A ref found nowhere, an image that cannot be pulled: this check fails (shown by resource-versions); the next interval looks again.
    if (err instanceof StepErrored || (err instanceof ApplicationFailure && err.nonRetryable)) {
      const prefix = `resource ${resource.name}: `;
      const message = err.message.startsWith(prefix) ? err.message : `${prefix}check: ${err.message}`;
      throw ApplicationFailure.create({ type: CHECK_FAILED, nonRetryable: true, message });
    }
    throw err;
  }
  const file = resource.type.kind === 'host' ? path.join(resource.type.dir, 'check') : '/opt/resource/check';
  if (out.timedOut)
    throw ApplicationFailure.create({
      type: CHECK_FAILED,
      nonRetryable: true,
      message:
        `resource ${resource.name}: check timed out after ${formatMs(timeoutMs)} (check_timeout; Concourse's default is 1h); it runs again at the next check_every. ${out.stderr.slice(-STDERR_TAIL).trim()}`.trim(),
    });
  if (out.code !== 0)
    throw ApplicationFailure.create({
      type: CHECK_FAILED,
      nonRetryable: true,
      message:
        `resource ${resource.name}: check exited ${out.code}: ${out.stderr.slice(-STDERR_TAIL).trim()}` +
        // 126: setpriv could not execute it as the check's uid.
        (out.code === 126 && canIsolate() && resource.type.kind === 'host'
          ? `; checks run as an unprivileged uid: ${file} and every directory above it must be readable and searchable by others (chmod o+rx)`
          : ''),
    });
  let parsed: unknown;
  try {
    parsed = JSON.parse(out.stdout);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed) || !parsed.every(isVersion))
    throw ApplicationFailure.create({
      type: CHECK_FAILED,
      nonRetryable: true,
      message: `resource ${resource.name}: check printed ${out.stdout.slice(0, 200)}; the protocol wants a JSON list of versions (maps of strings)`,
    });
  return parsed.map((v) => Object.fromEntries(Object.entries(v).map(([k, x]) => [k, String(x)])));
}

function isVersion(v: unknown): v is Record<string, string | number | boolean> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** "1h", "30s", "1500ms": a check_timeout as a user wrote it. */
function formatMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
