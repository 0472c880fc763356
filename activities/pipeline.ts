// The pipeline workflow's side effects: running a resource type's `check`, starting a job's
// build workflow, and asking which job builds ended. Each is idempotent: a check only reads,
// a build start with an id that exists is refused by Temporal and taken as done, and an
// outcome is read from visibility-free describe calls.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { ApplicationFailure, TypedSearchAttributes } from '@temporalio/common';
import { buildStatusOf } from '../common/build-client';
import { CausewayBuildNumber, CausewayJob, CausewayPipeline, CausewayStatus } from '../common/search-attributes';
import { BUILD_WORKFLOW, type BuildInput, type BuildSummary } from '../schemas/build';
import { DEFAULT_CHECK_TIMEOUT_MS } from '../schemas/check-defaults';
import type { ResourceVersion } from '../schemas/compiled';
import type { BuildOutcome } from '../schemas/pipeline-api';
import { CredentialResolver, resolveResourceRequest, type WorkerCredentials } from './creds';
import { NO_CREDENTIALS } from './deps';
import { StepErrored } from './errors';
import type { PipelineActivities } from './types';

/** The failure type of a check that ran and failed: the workflow records it and checks again at the next interval. */
export const CHECK_FAILED = 'CheckFailed';
/** The stderr kept for the error of a failed check. */
const STDERR_TAIL = 2_000;

/** `credentials`: the worker's cluster-wide manager and redaction, for the refs in a resource's source. */
export function pipelineActivities(credentials: WorkerCredentials = NO_CREDENTIALS): PipelineActivities {
  return {
    async checkResource(req) {
      const creds = new CredentialResolver(credentials, req.pipeline, req.varSources);
      try {
        return await checkResource(req, creds);
      } catch (err) {
        // A check's stderr may print its source: its values never reach the pipeline's history.
        if (err instanceof Error) err.message = creds.redactMessage(err.message);
        throw err;
      }
    },
    async startJobBuild({ workflowId, taskQueue, pipeline, job, number, plan }) {
      const input: BuildInput = { plan, uploads: [], downloads: [] };
      try {
        await Context.current().client.workflow.start(BUILD_WORKFLOW, {
          taskQueue,
          workflowId,
          args: [input],
          // A build id is used once: a retried start after a crash finds it and does nothing.
          workflowIdReusePolicy: 'REJECT_DUPLICATE',
          staticSummary: `${pipeline}/${job} #${number}`,
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

/** Runs the type's `check` with the resource's source, its credential refs resolved in the parsed value. */
async function checkResource(
  { resource, from, timeoutMs = DEFAULT_CHECK_TIMEOUT_MS }: Parameters<PipelineActivities['checkResource']>[0],
  creds: CredentialResolver,
): Promise<ResourceVersion[]> {
  const type = resource.type;
  if (type.kind !== 'host')
    throw ApplicationFailure.create({
      type: CHECK_FAILED,
      nonRetryable: true,
      message: `resource ${resource.name}: pipelines check host resource types only (git, time, registry-image, or a resource_types entry of type directory); ${type.name} is not one`,
    });
  let request: { source: Record<string, unknown>; version: ResourceVersion | null };
  try {
    request = await resolveResourceRequest(creds, resource, { source: resource.source, version: from });
  } catch (err) {
    // A ref found nowhere fails this check (shown by resource-versions); the next interval looks again.
    if (err instanceof StepErrored) throw ApplicationFailure.create({ type: CHECK_FAILED, nonRetryable: true, message: err.message });
    throw err;
  }
  const out = await runCheck(path.join(type.dir, 'check'), JSON.stringify(request), timeoutMs);
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
      message: `resource ${resource.name}: check exited ${out.code}: ${out.stderr.slice(-STDERR_TAIL).trim()}`,
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

/**
 * Runs a check script with the request on stdin, as Concourse's protocol wants. Past the
 * timeout its whole process group (a git check's children too) is killed.
 */
function runCheck(
  file: string,
  request: string,
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string; timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, [], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-STDERR_TAIL * 2)));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut });
    });
    // A check that exits without reading its request (EPIPE) is judged by its exit status.
    child.stdin.on('error', () => undefined);
    child.stdin.end(request);
  });
}

/** "1h", "30s", "1500ms": a check_timeout as a user wrote it. */
function formatMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
