// Pipelines, with fly's command names and flags: set-pipeline, pipelines, destroy-pipeline,
// pause/unpause-pipeline, jobs, pause/unpause-job, trigger-job, check-resource, resources,
// resource-versions, pin/unpin-resource, disable/enable-resource-version, rerun-build,
// schedule-job. Each talks to the pipeline's workflow
// (`pipeline-NAME`) through updates and queries; builds of jobs are ordinary builds.
import { createInterface } from 'node:readline/promises';
import { WorkflowUpdateFailedError, WorkflowUpdateStage, type Client } from '@temporalio/client';
import YAML from 'yaml';
import { awaitBuild } from '../../common/build-client';
import { readEnv } from '../../common/config';
import {
  applyPipeline,
  archivedPipelines,
  changes,
  configKey,
  credentialRefs,
  credentialRefsNote,
  describePipeline,
  lastPipelineView,
  pipelineDiff,
  renamedPipelineInput,
} from '../../common/pipeline-set';
import { EXIT_CODES } from '../exit-codes';
import { CausewayPipeline } from '../../common/search-attributes';
import { varsFromFlags } from '../../schemas';
import { ACCEPTED_YAML_OPTIONS, formatIssue, type PlanIssue } from '../../schemas/errors';
import { readYamlFile } from '../../schemas/checks';
import { findVarRefs, interpolate, lookupIn } from '../../schemas/interpolate';
import { compilePipelineSource, type PipelineConfig } from '../../schemas/pipeline';
import { pipelineWarnings } from '../../schemas/pipeline-warnings';
import {
  formatPipelineRef,
  parseInstanceVarFlags,
  parsePipelineChildRef,
  parsePipelineRef,
  pipelineKey,
  type InstanceVars,
  type PipelineRef,
} from '../../schemas/instance-vars';
import type { GetStep } from '../../schemas/compiled';
import { checkName } from '../../schemas/names';
import { checkClusterRefs } from '../../workers/credentials';
import {
  buildWorkflowId,
  formatVersion,
  isDisabled,
  jobBuildId,
  PIPELINE_UPDATES,
  PIPELINE_WORKFLOW,
  pipelineKeyOfWorkflowId,
  pipelineWorkflowId,
  type DestroyRequest,
  type PinRequest,
  type PipelineInput,
  type PipelineView,
} from '../../schemas/pipeline-api';
import { buildUrl, openSession, type Session } from '../connect';
import { followUntilDone } from '../follow';
import { renderOutcome } from '../render';
import { exitWith } from '../main-helpers';
import { CliError, disableColor, paint, say, table } from '../output';

/** A pipeline as the commands address it: its key (workflow ids) and how it prints (`NAME` or `NAME/k:v,...`). */
interface Target {
  key: string;
  display: string;
}

const REF_HELP =
  'a pipeline is NAME, or NAME/KEY:VALUE[,KEY:VALUE...] for an instance (fly\'s form: values are YAML, a value holding `,`, `:` or `/` is quoted: pr/branch:"feature/x"); list them with `causeway pipelines`';

function target(ref: PipelineRef, flag: string, value: string): Target {
  const bad = checkName('pipeline', ref.name);
  if (bad) throw new CliError(`${flag} ${value}: ${bad}`, REF_HELP);
  return { key: pipelineKey(ref), display: formatPipelineRef(ref) };
}

/** `-p P` (fly's PipelineFlag): a pipeline, or an instance `P/k:v,...`. */
function pipelineFlag(value: string, flag = '-p'): Target {
  let ref: PipelineRef;
  try {
    ref = parsePipelineRef(value);
  } catch (err) {
    throw new CliError(`${flag} ${value}: ${(err as Error).message}`, REF_HELP);
  }
  return target(ref, flag, value);
}

/** `P/X` of -j and -r (fly's JobFlag and ResourceFlag): the pipeline part may be an instance, `P/k:v,.../X`. */
function split(value: string, flag: '-j' | '-r'): [Target, string] {
  const what = flag === '-j' ? 'job' : 'resource';
  let parsed: ReturnType<typeof parsePipelineChildRef>;
  try {
    parsed = parsePipelineChildRef(value, what);
  } catch (err) {
    throw new CliError(
      `${flag} ${value}: ${(err as Error).message}`,
      `e.g. ${flag} booklit/unit or ${flag} pr/branch:feature-x/unit; ${REF_HELP}`,
    );
  }
  return [target(parsed.pipeline, flag, value), parsed.name];
}

/** `k:v` of --from and -v (fly's form). */
function versionFlag(values: string[], flag: string): Record<string, string> {
  return Object.fromEntries(
    values.map((kv) => {
      const i = kv.indexOf(':');
      if (i <= 0) throw new CliError(`${flag} takes KEY:VALUE, got ${kv}`, `e.g. ${flag} ref:4c2f1e0`);
      return [kv.slice(0, i), kv.slice(i + 1)];
    }),
  );
}

async function withSession<T>(fn: (s: Session) => Promise<T>): Promise<T> {
  const session = await openSession({ autoStart: false });
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}

/** A pipeline that is set (not destroyed), or a CliError saying there is none. */
async function view(client: Client, pipeline: Target): Promise<PipelineView> {
  const last = await lastPipelineView(client, pipeline.key);
  if (!last?.running)
    throw new CliError(
      `no pipeline ${pipeline.display}`,
      'list pipelines with `causeway pipelines`, or set one with `causeway set-pipeline`',
    );
  return last.view;
}

/** Looks the pipeline up (a CliError when it is not set), then sends it an update (send). */
async function update<T>(client: Client, pipeline: Target, name: string, arg?: unknown): Promise<T> {
  await view(client, pipeline);
  return send<T>(client, pipeline, name, arg);
}

/**
 * Sends an update to a pipeline the command has just found set; a refused one (unknown job,
 * disabled trigger) is the user's error, said plainly.
 */
async function send<T>(client: Client, pipeline: Target, name: string, arg?: unknown): Promise<T> {
  try {
    const handle = client.workflow.getHandle(pipelineWorkflowId(pipeline.key));
    return arg === undefined ? await handle.executeUpdate<T, []>(name) : await handle.executeUpdate<T, [unknown]>(name, { args: [arg] });
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) throw new CliError((err.cause as Error)?.message ?? err.message);
    throw err;
  }
}

const when = (ms: number | undefined) => (ms ? new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z') : 'never');

/** Reads and compiles a pipeline file as set-pipeline does: every problem with its file:line. */
function compilePipelineFile(opts: {
  pipeline: string;
  config: string;
  var: string[];
  yamlVar?: string[];
  loadVarsFrom: string[];
  instanceVars?: InstanceVars;
}) {
  const vars = varsFromFlags(opts);
  // fly's `-c -`: the file from stdin, named so in messages.
  const file = opts.config === '-' ? '(stdin)' : opts.config;
  let text: string;
  try {
    text = readYamlFile(opts.config === '-' ? 0 : opts.config, file);
  } catch (err) {
    if ((err as Error).name === 'PlanError') throw err;
    throw new CliError(`cannot read pipeline file ${file}: ${(err as Error).message}`);
  }
  const { config, source } = compilePipelineSource({ name: opts.pipeline, text, file, vars, instanceVars: opts.instanceVars });
  return { config, vars, file, warnings: pipelineWarnings(source) };
}

/** Concourse's warnings, as fly shows them (stderr, before anything else). */
function showWarnings(warnings: PlanIssue[]): void {
  if (warnings.length === 0) return;
  say(paint('yellow', 'WARNING:'));
  for (const w of warnings) say(`  - ${formatIssue(w)}`);
  if (warnings.some((w) => w.message.includes('is not a valid identifier')))
    say('identifier schema documentation: https://concourse-ci.org/config-basics.html#schema.identifier');
}

/** `fly validate-pipeline`: checks a pipeline file offline; `--output` prints it with its vars filled in. */
export function validatePipeline(opts: {
  config: string;
  var: string[];
  yamlVar?: string[];
  loadVarsFrom: string[];
  output?: boolean;
  strict?: boolean;
}): void {
  // Any valid name: validation does not depend on it.
  const { config, vars, warnings } = compilePipelineFile({ ...opts, pipeline: 'validate' });
  showWarnings(warnings);
  if (opts.strict && warnings.length > 0)
    throw new CliError(`configuration invalid: ${warnings.length} warning${warnings.length === 1 ? '' : 's'} with --strict`);
  if (opts.output) {
    const filled = interpolate(YAML.parse(config.text, ACCEPTED_YAML_OPTIONS), (ref) =>
      ref.source === undefined ? lookupIn(vars, ref) : { found: false },
    );
    process.stdout.write(YAML.stringify(filled.value));
    return;
  }
  const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  // fly prints it on stdout: scripts grep for it.
  process.stdout.write(`looks good: ${count(config.jobs.length, 'job')}, ${count(config.resources.length, 'resource')}\n`);
}

export async function setPipeline(opts: {
  pipeline: string;
  config: string;
  var: string[];
  yamlVar?: string[];
  loadVarsFrom: string[];
  instanceVar?: string[];
  nonInteractive?: boolean;
  dryRun?: boolean;
  color?: boolean;
  checkCreds?: boolean;
}): Promise<void> {
  if (opts.color === false) disableColor();
  // fly: the name is a name; an instance's vars come with -i.
  if (opts.pipeline.includes('/'))
    throw new CliError(
      `-p ${opts.pipeline}: pipeline name cannot contain '/'`,
      'give an instance its vars with -i: -p pr -i branch=feature-x',
    );
  const bad = checkName('pipeline', opts.pipeline);
  if (bad) throw new CliError(`-p ${opts.pipeline}: ${bad}`);
  let instanceVars: InstanceVars | undefined;
  try {
    instanceVars = parseInstanceVarFlags(opts.instanceVar ?? []);
  } catch (err) {
    throw new CliError((err as Error).message, 'e.g. -i branch=feature-x (the value is YAML: -i n=1 is a number, -i n="1" a string)');
  }
  const { config, file, warnings } = compilePipelineFile({ ...opts, instanceVars });
  showWarnings(warnings);
  if (opts.checkCreds) await checkCredentials(config);
  const ref = formatPipelineRef(config);
  await withSession(async (s) => {
    const last = await lastPipelineView(s.client, configKey(config));
    const running = last?.running ? last.view : undefined;
    const body = pipelineDiff(running?.config.text ?? '', config.text, file);
    if (running && !changes(body)) say('no changes to apply');
    for (const line of body)
      process.stdout.write(`${line.startsWith('+') ? paint('green', line) : line.startsWith('-') ? paint('red', line) : line}\n`);
    const note = credentialRefsNote(config);
    if (note) say(note);
    if (opts.dryRun) return say(`dry run: nothing applied to ${running ? '' : 'new '}pipeline ${ref}`);
    // As fly: a file read from stdin leaves no terminal to answer on.
    if (!opts.nonInteractive && opts.config !== '-') {
      if (!process.stdin.isTTY)
        throw new CliError('set-pipeline asks before applying, and stdin is not a terminal', 'add --non-interactive');
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      const answer = await rl.question(`apply configuration to ${running ? '' : 'new '}pipeline ${ref}? [yN]: `);
      rl.close();
      if (!/^y(es)?$/i.test(answer.trim())) throw new CliError('bailing out', undefined, 1);
    }
    const applied = await applyPipeline(s.client, s.taskQueue, config, last, { initiallyPaused: true });
    if (applied === 'updated') say(`configuration updated: pipeline ${ref}`);
    else say(`pipeline created: ${ref} (see its jobs with: causeway jobs -p ${shellWord(ref)})`);
    // As fly: a new pipeline starts paused (no checks, no builds) until someone unpauses it.
    if (applied !== 'updated' || running?.state.paused)
      say(`the pipeline is currently paused. to unpause, run: causeway unpause-pipeline -p ${shellWord(ref)}`);
  });
}

/**
 * fly's --check-creds: each credential ref set-pipeline leaves to the workers' credential manager
 * is looked up now, in the manager this shell names as the workers' (CAUSEWAY_CREDS or
 * CAUSEWAY_CREDS_FILE, under CAUSEWAY_CREDS_TEAM), as Concourse checks them against its own
 * before it saves. Refs to a `var_sources` entry (`((source:name))`) are left to the run, as
 * Concourse leaves them; unsourced refs inside a var source's config are looked up like others.
 */
async function checkCredentials(config: PipelineConfig): Promise<void> {
  const refs = new Map(
    credentialRefs(config)
      .filter((d) => findVarRefs(`((${d.ref}))`)[0]?.source === undefined)
      .map((d) => [`${d.ref} ${d.at}`, d]),
  );
  let checked: { manager: string } | undefined;
  try {
    checked = await checkClusterRefs(readEnv(), config.name, [...refs.values()]);
  } catch (err) {
    // By its reason: StepErrored is activities/', which the CLI does not import.
    if ((err as { reason?: string }).reason === 'UndefinedVar')
      throw new CliError(
        `credential validation failed\n\n${(err as Error).message}`,
        'store each var in the credential manager, or give it with -v/-y/-l',
      );
    throw new CliError(
      `--check-creds: ${(err as Error).message}`,
      "make CAUSEWAY_CREDS_FILE (or CAUSEWAY_CREDS) name the workers' credential manager as they have it",
    );
  }
  if (!checked)
    throw new CliError(
      "--check-creds: this shell names no credential manager (CAUSEWAY_CREDS or CAUSEWAY_CREDS_FILE), so the pipeline's credential refs cannot be looked up from here",
      "set CAUSEWAY_CREDS_FILE (or CAUSEWAY_CREDS) to the workers' credential manager config, or drop --check-creds",
    );
  const names = new Set([...refs.values()].map((d) => d.ref));
  say(`credentials checked: ${names.size} credential ref${names.size === 1 ? '' : 's'} found in ${checked.manager}`);
}

/**
 * The build id of a job's build `number`, or of its newest (fly watch -j: the build running or
 * pending, else the last one that ran); a CliError when there is none or it has not started.
 */
export async function jobBuildIdOf(client: Client, jobRef: string, number?: number): Promise<string> {
  const [p, j] = split(jobRef, '-j');
  const v = await view(client, p);
  if (!v.config.jobs.some((x) => x.name === j))
    throw new CliError(`no job ${j} in pipeline ${p.display}`, `its jobs: ${v.config.jobs.map((x) => x.name).join(', ')}`);
  const builds = v.state.builds.filter((b) => b.job === j);
  const build = number === undefined ? builds[builds.length - 1] : builds.find((b) => b.number === number);
  if (!build)
    throw new CliError(
      number === undefined ? `job ${jobRef} has no builds yet` : `job ${jobRef} has no build #${number}`,
      `see its builds with: causeway builds -j ${shellWord(jobRef)}`,
    );
  if (build.status === 'pending')
    throw new CliError(`${jobRef} #${build.number} is pending: it has not started yet (see causeway jobs -p ${shellWord(p.display)})`);
  return buildWorkflowId(p.key, build);
}

/** fly's get-pipeline: the file as it was set (its ((vars)) as written), or that as JSON. */
export async function getPipeline(opts: { pipeline: string; json?: boolean }): Promise<void> {
  const p = pipelineFlag(opts.pipeline);
  await withSession(async (s) => {
    const { text } = (await view(s.client, p)).config;
    if (opts.json) return console.log(JSON.stringify(YAML.parse(text, ACCEPTED_YAML_OPTIONS), null, 2));
    process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  });
}

/** The pipelines that are set (running pipeline workflows) with their views; one that ends meanwhile is left out. */
async function setPipelines(client: Client): Promise<{ target: Target; view: PipelineView }[]> {
  const found: { target: Target; view: PipelineView }[] = [];
  for await (const wf of client.workflow.list({ query: `WorkflowType = '${PIPELINE_WORKFLOW}' AND ExecutionStatus = 'Running'` })) {
    const key = wf.typedSearchAttributes.get(CausewayPipeline) ?? pipelineKeyOfWorkflowId(wf.workflowId);
    const v = await view(client, { key, display: key }).catch(() => undefined);
    if (v) found.push({ target: { key, display: formatPipelineRef(v.config) }, view: v });
  }
  return found;
}

/** A row of `pipelines`: fly's `archived` (always in `--json`, as fly's) with Causeway's counts. */
interface PipelineRow {
  name: string;
  instance_vars?: InstanceVars;
  ref: string;
  paused: boolean;
  archived: boolean;
  jobs: number;
  resources: number;
}

/** fly's pipelines: those set, and with `includeArchived` the archived ones not set again since. */
export async function listPipelines(opts: { json?: boolean; includeArchived?: boolean }): Promise<void> {
  await withSession(async (s) => {
    const listed = await setPipelines(s.client);
    const rows: PipelineRow[] = listed.map(({ view: v }) => ({
      name: v.config.name,
      ...(v.config.instanceVars ? { instance_vars: v.config.instanceVars } : {}),
      ref: formatPipelineRef(v.config),
      paused: v.state.paused,
      archived: false,
      jobs: v.config.jobs.length,
      resources: v.config.resources.length,
    }));
    if (opts.includeArchived) {
      // One set again between the two listings is listed as set.
      const set = new Set(listed.map((p) => p.target.key));
      for (const a of await archivedPipelines(s.client))
        if (!set.has(a.key))
          // As Concourse's archive: paused, its configuration (jobs, resources) cleared.
          rows.push({
            name: a.name,
            ...(a.instanceVars ? { instance_vars: a.instanceVars } : {}),
            ref: a.ref,
            paused: true,
            archived: true,
            jobs: 0,
            resources: 0,
          });
    }
    // An instance group's instances follow each other, after the pipeline of that name if there is one.
    rows.sort((a, b) => a.name.localeCompare(b.name) || a.ref.localeCompare(b.ref));
    if (opts.json) return console.log(JSON.stringify(rows, null, 2));
    if (rows.length === 0) return say('no pipelines: set one with `causeway set-pipeline -p NAME -c pipeline.yml`');
    const yesNo = (b: boolean) => (b ? 'yes' : 'no');
    // fly's column order: archived after the flags, only with --include-archived.
    console.log(
      table([
        ['name', 'paused', ...(opts.includeArchived ? ['archived'] : []), 'jobs', 'resources'],
        ...rows.map((r) => [
          r.ref,
          yesNo(r.paused),
          ...(opts.includeArchived ? [yesNo(r.archived)] : []),
          String(r.jobs),
          String(r.resources),
        ]),
      ]),
    );
  });
}

export async function destroyPipeline(opts: { pipeline: string; nonInteractive?: boolean }): Promise<void> {
  const p = pipelineFlag(opts.pipeline);
  await withSession(async (s) => {
    if (!opts.nonInteractive) {
      if (!process.stdin.isTTY) throw new CliError('destroy-pipeline asks first, and stdin is not a terminal', 'add --non-interactive');
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      const answer = await rl.question(`destroy pipeline ${p.display}? [yN]: `);
      rl.close();
      if (!/^y(es)?$/i.test(answer.trim())) throw new CliError('bailing out', undefined, 1);
    }
    await update(s.client, p, PIPELINE_UPDATES.destroy);
    say(`pipeline ${p.display} destroyed`);
  });
}

/**
 * fly's rename-pipeline: each pipeline's workflow ends handing over its whole state (versions,
 * builds, pins, pauses), and a workflow under the new name goes on from it. Its builds keep
 * their workflow ids under the old name. As Concourse's (one UPDATE of every pipeline of that
 * name), the name's whole instance group is renamed: the pipeline without instance vars and
 * every instance. A start that fails puts that pipeline back and stops there.
 */
export async function renamePipeline(opts: { oldName: string; newName: string }): Promise<void> {
  // As fly: an instance group is named without its vars.
  for (const [flag, name] of [
    ['old', opts.oldName],
    ['new', opts.newName],
  ])
    if (name.includes('/')) throw new CliError(`${flag} pipeline name cannot contain '/'`);
  const bad = checkName('pipeline', opts.newName);
  if (bad) throw new CliError(`-n ${opts.newName}: ${bad}`);
  if (opts.newName === opts.oldName) throw new CliError(`pipeline '${opts.oldName}' is named so already`);
  await withSession(async (s) => {
    const refs = await pipelinesNamed(s.client, opts.oldName);
    if (refs.length === 0) throw new CliError(`pipeline '${opts.oldName}' not found`, 'list pipelines with `causeway pipelines`');
    const moves = await Promise.all(
      refs.map(async (ref) => {
        const to = { ...ref, name: opts.newName };
        const taken = await describePipeline(s.client, pipelineKey(to));
        if (taken?.running)
          throw new CliError(`pipeline '${formatPipelineRef(to)}' already exists`, 'destroy it first, or pick another name');
        return { from: ref, to, counters: taken?.running === false ? taken.counters : undefined };
      }),
    );
    const start = (key: string, args: PipelineInput) =>
      s.client.workflow.start(PIPELINE_WORKFLOW, {
        taskQueue: s.taskQueue,
        workflowId: pipelineWorkflowId(key),
        args: [args],
        staticSummary: `pipeline ${formatPipelineRef(args.config)}`,
      });
    const done: string[] = [];
    for (const { from, to, counters } of moves) {
      const oldKey = pipelineKey(from);
      const input = await send<PipelineInput>(s.client, { key: oldKey, display: formatPipelineRef(from) }, PIPELINE_UPDATES.rename, {
        to: opts.newName,
      });
      try {
        await start(pipelineKey(to), renamedPipelineInput(oldKey, input, opts.newName, counters));
      } catch (err) {
        await start(oldKey, input);
        const renamed = done.length > 0 ? `; renamed before it: ${done.join(', ')}` : '';
        throw new CliError(
          `could not start pipeline '${formatPipelineRef(to)}' (pipeline '${formatPipelineRef(from)}' is back as it was${renamed}): ${(err as Error).message}`,
        );
      }
      done.push(formatPipelineRef(to));
    }
    say(`pipeline successfully renamed to '${opts.newName}'`);
  });
}

/**
 * The running pipelines named `name`: the one without instance vars (its key is the name: asked
 * directly, as visibility lags a pipeline set a moment ago) and the instances of its group (keys
 * `NAME+...`, told apart from another name's by their config).
 */
async function pipelinesNamed(client: Client, name: string): Promise<PipelineRef[]> {
  const instanceKeys = async () => {
    const keys: string[] = [];
    const query = `WorkflowType = '${PIPELINE_WORKFLOW}' AND ExecutionStatus = 'Running'`;
    for await (const wf of client.workflow.list({ query })) {
      const key = wf.typedSearchAttributes.get(CausewayPipeline) ?? pipelineKeyOfWorkflowId(wf.workflowId);
      if (key.startsWith(`${name}+`)) keys.push(key);
    }
    return keys;
  };
  const [plain, keys] = await Promise.all([lastPipelineView(client, name), instanceKeys()]);
  const instances = await Promise.all(
    keys.map(async (key): Promise<PipelineRef | undefined> => {
      const v = await view(client, { key, display: key }).catch(() => undefined);
      return v?.config.name === name ? { name, instanceVars: v.config.instanceVars } : undefined;
    }),
  );
  return [...(plain?.running ? [{ name }] : []), ...instances.filter((r): r is PipelineRef => r !== undefined)];
}

/**
 * fly's archive-pipeline: the pipeline stops for good (as destroy-pipeline here: its builds stay,
 * set-pipeline sets it again), and the pipelines its set_pipeline steps set archive themselves.
 */
export async function archivePipeline(opts: { pipeline?: string; all?: boolean; nonInteractive?: boolean }): Promise<void> {
  if (opts.all && opts.pipeline !== undefined) throw new CliError("only one of the flags '-p, --pipeline' or '-a, --all' is allowed");
  if (!opts.all && opts.pipeline === undefined) throw new CliError("one of the flags '-p, --pipeline' or '-a, --all' is required");
  await withSession(async (s) => {
    const targets = opts.all ? (await setPipelines(s.client)).map((p) => p.target) : [pipelineFlag(opts.pipeline!)];
    if (targets.length === 0) return say('no pipelines to archive');
    if (!opts.nonInteractive) {
      if (!process.stdin.isTTY) throw new CliError('archive-pipeline asks first, and stdin is not a terminal', 'add --non-interactive');
      say('!!! archiving the pipeline will remove its configuration. Build history will be retained.\n');
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      const answer = await rl.question(
        targets.length === 1 ? `archive pipeline '${targets[0].display}'? [yN]: ` : `archive ${targets.length} pipelines? [yN]: `,
      );
      rl.close();
      if (!/^y(es)?$/i.test(answer.trim())) throw new CliError('bailing out', undefined, 1);
    }
    for (const p of targets) {
      // One query of each: --all's listing has just read every pipeline it archives.
      if (!opts.all && !(await lastPipelineView(s.client, p.key))?.running) throw new CliError(`pipeline '${p.display}' not found`);
      await send(s.client, p, PIPELINE_UPDATES.destroy, { archived: 'archive-pipeline' } satisfies DestroyRequest);
      say(`archived '${p.display}'`);
    }
  });
}

/** fly's pause-pipeline / unpause-pipeline: one pipeline (`-p`), or every pipeline that is set (`-a`). */
export async function pausePipeline(opts: { pipeline?: string; all?: boolean }, paused: boolean): Promise<void> {
  const command = paused ? 'pause-pipeline' : 'unpause-pipeline';
  if (opts.all && opts.pipeline !== undefined)
    throw new CliError(
      `${command}: give -p or --all, not both`,
      `-p names one pipeline, --all ${paused ? 'pauses' : 'unpauses'} every one`,
    );
  if (!opts.all && opts.pipeline === undefined)
    throw new CliError(`${command}: which pipeline?`, 'give -p NAME, or --all for every pipeline');
  await withSession(async (s) => {
    const targets = opts.all ? (await setPipelines(s.client)).map((p) => p.target) : [pipelineFlag(opts.pipeline!)];
    if (targets.length === 0) return say('no pipelines: set one with `causeway set-pipeline -p NAME -c pipeline.yml`');
    for (const p of targets) {
      await update(s.client, p, PIPELINE_UPDATES.pause, { paused });
      say(`${paused ? 'paused' : 'unpaused'} '${p.display}'`);
    }
  });
}

export async function pauseJob(opts: { job: string }, paused: boolean): Promise<void> {
  await withSession(async (s) => {
    const [p, j] = split(opts.job, '-j');
    await update(s.client, p, PIPELINE_UPDATES.pause, { job: j, paused });
    say(`${paused ? 'paused' : 'unpaused'} '${j}'`);
  });
}

export async function jobs(opts: { pipeline: string; json?: boolean }): Promise<void> {
  const p = pipelineFlag(opts.pipeline);
  await withSession(async (s) => {
    const v = await view(s.client, p);
    const rows = v.config.jobs.map((j) => {
      const builds = v.state.builds.filter((b) => b.job === j.name);
      const last = builds[builds.length - 1];
      return {
        name: j.name,
        paused: v.state.pausedJobs.includes(j.name),
        last: last ? `#${last.number} ${last.status}` : 'n/a',
        builds: builds.map((b) => ({
          number: b.number,
          status: b.status,
          id: buildWorkflowId(p.key, b),
          ...(b.rerunOf !== undefined ? { rerun_of: b.rerunOf } : {}),
        })),
        next: v.next[j.name],
      };
    });
    if (opts.json) return console.log(JSON.stringify(rows, null, 2));
    console.log(
      table([['name', 'paused', 'last build', 'next inputs'], ...rows.map((r) => [r.name, r.paused ? 'yes' : 'no', r.last, r.next])]),
    );
  });
}

/** How long `trigger-job -w` waits for its build to start before it says why the build is pending, and then between looks. */
const PENDING_NOTE_AFTER_MS = 5000;

/** Why a job's triggered build (or rerun, which has its inputs) has not started, as the pipeline sees it now. */
async function pendingReason(client: Client, p: Target, job: string, rerun: boolean): Promise<string> {
  const v = await view(client, p);
  if (v.state.paused) return `pipeline ${p.display} is paused`;
  if (v.state.pausedJobs.includes(job)) return `job ${job} is paused`;
  if (!rerun && v.nextInputs && !v.nextInputs[job]) {
    const resources = v.config.jobs.find((x) => x.name === job)?.inputs.map((i) => i.resource) ?? [];
    const failed = [...new Set(resources)]
      .filter((r) => v.checkErrors[r])
      .map((r) => `; the last check of ${r} failed: ${v.checkErrors[r]}`);
    return `waiting for its inputs: ${v.next[job]}${failed.join('')}`;
  }
  return 'its inputs are ready: waiting for its turn (max_in_flight, serial groups)';
}

export async function triggerJob(opts: { job: string; watch?: boolean }): Promise<void> {
  await withSession(async (s) => {
    const [p, j] = split(opts.job, '-j');
    const number = await update<number>(s.client, p, PIPELINE_UPDATES.trigger, j);
    say(`started ${p.display}/${j} #${number} (build ${jobBuildId(p.key, j, number)})`);
    await afterStart(s, p, j, number, { watch: opts.watch, rerun: false });
  });
}

/**
 * fly's schedule-job: asks the pipeline for a scheduling pass now (Concourse's RequestSchedule).
 * The pipeline makes one on every change that could start a build, so this is fly's recovery
 * command, harmless when nothing is stuck.
 */
export async function scheduleJob(opts: { job: string }): Promise<void> {
  await withSession(async (s) => {
    const [p, j] = split(opts.job, '-j');
    await update(s.client, p, PIPELINE_UPDATES.schedule, j);
    say(`scheduled '${j}'`);
  });
}

/** fly's rerun-build: a new build of the job with the inputs of build -b, numbered on (docs/cli.md). */
export async function rerunBuild(opts: { job: string; build: number; watch?: boolean }): Promise<void> {
  await withSession(async (s) => {
    const [p, j] = split(opts.job, '-j');
    const { number, rerunOf } = await update<{ number: number; rerunOf: number }>(s.client, p, PIPELINE_UPDATES.rerun, {
      job: j,
      number: opts.build,
    });
    say(`started ${p.display}/${j} #${number}, a rerun of #${rerunOf} (build ${jobBuildId(p.key, j, number)})`);
    await afterStart(s, p, j, number, { watch: opts.watch, rerun: true });
  });
}

/**
 * What trigger-job and rerun-build do once the build is numbered: say why it waits, when its
 * pipeline or job is paused, and with `watch` follow it to its end and exit with its status.
 */
async function afterStart(s: Session, p: Target, j: string, number: number, opts: { watch?: boolean; rerun: boolean }): Promise<void> {
  const id = jobBuildId(p.key, j, number);
  // As Concourse: a paused pipeline or job keeps the build pending until unpaused.
  const { state } = await view(s.client, p);
  if (state.paused)
    say(`pipeline ${p.display} is paused: the build starts once it is unpaused (causeway unpause-pipeline -p ${shellWord(p.display)})`);
  else if (state.pausedJobs.includes(j))
    say(
      `job ${p.display}/${j} is paused: the build starts once it is unpaused (causeway unpause-job -j ${shellWord(`${p.display}/${j}`)})`,
    );
  if (!opts.watch) return;
  const handle = s.client.workflow.getHandle(id);
  // The build starts when its inputs resolve and its job's max_in_flight, serial groups and pause allow.
  let nextLook = Date.now() + PENDING_NOTE_AFTER_MS;
  let said: string | undefined;
  for (;;) {
    try {
      await handle.describe();
      break;
    } catch (err) {
      if ((err as Error).name !== 'WorkflowNotFoundError') throw err;
    }
    // A query of the pipeline every few seconds, not at each look for the build.
    if (Date.now() >= nextLook) {
      nextLook = Date.now() + PENDING_NOTE_AFTER_MS;
      const why = await pendingReason(s.client, p, j, opts.rerun).catch(() => undefined);
      if (why && why !== said) say(`${p.display}/${j} #${number} pending: ${why}`);
      said = why ?? said;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  const started = Date.now();
  const outcome = await followUntilDone(s, handle, { abortOnInterrupt: false });
  // As run and watch end: what went wrong where (an errored step's message is in no step's log).
  console.log(renderOutcome(id, outcome, Date.now() - started, buildUrl(s, id)));
  say(`${p.display}/${j} #${number} ${outcome.status}`);
  exitWith(EXIT_CODES[(await awaitBuild(handle)).status]);
}

/**
 * `execute -j P/J` (fly's inputs-from): the job's gets by artifact name, each pinned to the
 * version the job's next build would get (Concourse's job inputs: `passed` and pins applied).
 */
export async function nextBuildGets(client: Client, jobRef: string): Promise<{ job: string; gets: Map<string, GetStep> }> {
  const [p, j] = split(jobRef, '-j');
  const v = await seenEnded(client, p);
  const job = v.config.jobs.find((x) => x.name === j);
  if (!job)
    throw new CliError(`-j ${jobRef}: no job ${j} in pipeline ${p.display}`, `its jobs: ${v.config.jobs.map((x) => x.name).join(', ')}`);
  if (!v.nextInputs) throw new CliError(`-j ${jobRef}: the worker running pipeline ${p.display} is older than this causeway`, 'upgrade it');
  const next = v.nextInputs[j];
  if (!next)
    throw new CliError(`-j ${jobRef}: the job's inputs are not satisfiable: ${v.next[j]}`, `see causeway jobs -p ${shellWord(p.display)}`);
  const gets = new Map<string, GetStep>();
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) return value.forEach(visit);
    if (typeof value !== 'object' || value === null) return;
    const step = value as Partial<GetStep>;
    if (step.kind === 'get' && step.name && next[step.name] && !gets.has(step.name))
      gets.set(step.name, { ...(step as GetStep), version: next[step.name].version });
    Object.values(value).forEach(visit);
  };
  visit(job.plan.plan);
  return { job: `${p.display}/${j}`, gets };
}

/**
 * The pipeline's view once it has seen the end of every build that has ended: it looks at its
 * running builds every 2 s, so a build `trigger-job -w` just watched end may still count as
 * running, and its versions not yet as passed. Gives up waiting after 30 s.
 */
async function seenEnded(client: Client, p: Target): Promise<PipelineView> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const v = await view(client, p);
    const started = v.state.builds.filter((b) => b.status === 'started');
    const ended = await Promise.all(
      // A build the pipeline marked started whose workflow is not there yet is about to start.
      started.map((b) =>
        client.workflow
          .getHandle(buildWorkflowId(p.key, b))
          .describe()
          .then(
            (d) => d.status.name !== 'RUNNING',
            (err: Error) => (err.name === 'WorkflowNotFoundError' ? false : Promise.reject(err)),
          ),
      ),
    );
    if (!ended.includes(true) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The pipeline's resource `r`; one it does not have is refused, naming those it has. */
function resourceOf(v: PipelineView, p: Target, r: string): PipelineView['config']['resources'][number] {
  const resource = v.config.resources.find((x) => x.name === r);
  if (!resource)
    throw new CliError(`no resource ${r} in pipeline ${p.display} (resources: ${v.config.resources.map((x) => x.name).join(', ')})`);
  return resource;
}

export async function checkResource(opts: { resource: string; from: string[]; async?: boolean }): Promise<void> {
  await withSession(async (s) => {
    const [p, r] = split(opts.resource, '-r');
    const from = opts.from.length > 0 ? versionFlag(opts.from, '--from') : undefined;
    const req = { resource: r, ...(from ? { from } : {}) };
    if (opts.async) {
      // Said here: a refused update answers startUpdate as if taken, its error kept for a result nobody awaits.
      resourceOf(await view(s.client, p), p, r);
      await s.client.workflow
        .getHandle(pipelineWorkflowId(p.key))
        .startUpdate<unknown, [unknown]>(PIPELINE_UPDATES.check, { args: [req], waitForStage: WorkflowUpdateStage.ACCEPTED });
      say(`started a check of ${p.display}/${r}; its versions: causeway resource-versions -r ${p.display}/${r}`);
      return;
    }
    say(`checking ${p.display}/${r}`);
    const result = await update<{ added: number; error?: string }>(s.client, p, PIPELINE_UPDATES.check, req);
    if (result.error)
      throw new CliError(`check of ${p.display}/${r} failed: ${result.error}`, 'fix the resource source in the pipeline file');
    say(`checked ${p.display}/${r}: ${result.added} new version${result.added === 1 ? '' : 's'}`);
  });
}

/** A resource's pin (pin-resource's, else the pipeline file's) and the pin's comment. */
function pinOf(v: PipelineView, r: string): { pin?: Record<string, string>; comment?: string } {
  const pin = v.state.pins[r] ?? v.config.resources.find((x) => x.name === r)?.pinned;
  return { pin, comment: pin ? v.state.pinComments?.[r] : undefined };
}

/** fly's resources: each resource's type, pin and how its last check went, from the pipeline's view. */
export async function resources(opts: { pipeline: string; json?: boolean }): Promise<void> {
  const p = pipelineFlag(opts.pipeline);
  await withSession(async (s) => {
    const v = await view(s.client, p);
    const rows = v.config.resources.map((r) => {
      const { pin, comment } = pinOf(v, r.name);
      const checked = v.lastChecked[r.name];
      const error = v.checkErrors[r.name];
      return {
        name: r.name,
        pipeline_name: v.config.name,
        ...(v.config.instanceVars ? { pipeline_instance_vars: v.config.instanceVars } : {}),
        type: r.ref.type.name,
        ...(checked ? { last_checked: Math.floor(checked / 1000) } : {}),
        ...(pin ? { pinned_version: pin } : {}),
        ...(pin && !v.state.pins[r.name] ? { pinned_in_config: true } : {}),
        ...(comment !== undefined ? { pin_comment: comment } : {}),
        ...(checked ? { check_status: error ? 'failed' : 'succeeded' } : {}),
        ...(error ? { check_error: error } : {}),
      };
    });
    if (opts.json) return console.log(JSON.stringify(rows, null, 2));
    for (const r of rows) if (r.check_error) say(`${r.name}: last check failed: ${r.check_error}`);
    console.log(
      table([
        ['name', 'type', 'pinned', 'check status'],
        ...rows.map((r) => [r.name, r.type, r.pinned_version ? formatVersion(r.pinned_version) : 'n/a', r.check_status ?? 'n/a']),
      ]),
    );
  });
}

export async function resourceVersions(opts: { resource: string; count: number; json?: boolean }): Promise<void> {
  await withSession(async (s) => {
    const [p, r] = split(opts.resource, '-r');
    const v = await view(s.client, p);
    resourceOf(v, p, r);
    const { pin, comment } = pinOf(v, r);
    const pinned = (version: Record<string, string>) => !!pin && Object.entries(pin).every(([k, x]) => version[k] === x);
    const rows = [...(v.state.versions[r] ?? [])]
      .reverse()
      .slice(0, opts.count)
      .map((x) => ({ id: x.seq, version: x.version, enabled: !isDisabled(v.state, r, x.seq), pinned: pinned(x.version) }))
      .map((x) => (x.pinned && comment !== undefined ? { ...x, pin_comment: comment } : x));
    if (opts.json) return console.log(JSON.stringify(rows, null, 2));
    const checked = `last checked ${when(v.lastChecked[r])}${v.checkErrors[r] ? `; last check failed: ${v.checkErrors[r]}` : ''}`;
    say(checked);
    if (pin)
      say(
        `pinned to ${formatVersion(pin)}${v.state.pins[r] ? '' : ' (by the pipeline file)'}${comment !== undefined ? `: ${comment}` : ''}`,
      );
    console.log(
      table([
        ['id', 'version', 'enabled', 'pinned'],
        ...rows.map((x) => [String(x.id), formatVersion(x.version), x.enabled ? 'yes' : 'no', x.pinned ? 'yes' : 'no']),
      ]),
    );
  });
}

/** fly's pin-resource: pins a version (-v), saves a comment with the pin (-c), or both in one update. */
export async function pinResource(opts: { resource: string; version: string[]; comment?: string }): Promise<void> {
  // As fly: an empty comment is none.
  const comment = opts.comment || undefined;
  if (opts.version.length === 0 && comment === undefined)
    throw new CliError(
      'the required flag `-v, --version` was not specified',
      'give -v KEY:VALUE to pin a version, or -c TEXT to comment on the pin the resource has',
      1,
    );
  const [p, r] = split(opts.resource, '-r');
  const version = opts.version.length > 0 ? versionFlag(opts.version, '-v') : undefined;
  const req: PinRequest = { resource: r, ...(version ? { version } : {}), ...(comment !== undefined ? { comment } : {}) };
  await withSession(async (s) => {
    await update(s.client, p, PIPELINE_UPDATES.pin, req);
    // As fly: the version pinned in full (the newest match of -v), as JSON.
    if (version) say(`pinned '${p.display}/${r}' with version ${JSON.stringify((await view(s.client, p)).state.pins[r])}`);
    if (comment !== undefined) say(`pin comment '${comment}' is saved`);
  });
}

export async function unpinResource(opts: { resource: string }): Promise<void> {
  await withSession(async (s) => {
    const [p, r] = split(opts.resource, '-r');
    await update(s.client, p, PIPELINE_UPDATES.pin, { resource: r });
    say(`unpinned '${p.display}/${r}'`);
  });
}

/** fly's disable-resource-version / enable-resource-version: the newest version matching -v. */
export async function toggleResourceVersion(opts: { resource: string; version: string[] }, enabled: boolean): Promise<void> {
  const verb = enabled ? 'enable' : 'disable';
  if (opts.version.length === 0)
    throw new CliError(
      'the required flag `-v, --version` was not specified',
      `give -v KEY:VALUE, the version to ${verb} (a subset of its keys finds the newest match; see resource-versions)`,
      1,
    );
  const [p, r] = split(opts.resource, '-r');
  const version = versionFlag(opts.version, '-v');
  await withSession(async (s) => {
    const full = await update<Record<string, string>>(s.client, p, PIPELINE_UPDATES.toggleVersion, { resource: r, version, enabled });
    // As fly: the version in full, as JSON.
    say(`${verb}d '${p.display}/${r}' with version ${JSON.stringify(full)}`);
  });
}

/** A ref as a shell word: quoted when it holds anything a shell would read (`"`, spaces, braces). */
function shellWord(ref: string): string {
  return /^[A-Za-z0-9_\-/:.,=+@]+$/.test(ref) ? ref : `'${ref.replace(/'/g, `'\\''`)}'`;
}
