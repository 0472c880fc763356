import {
  ApplicationFailure,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  allHandlersFinished,
  patched,
} from '@temporalio/workflow';
import type { PipelineActivities } from '../activities/types';
import { CausewayPipeline } from '../common/search-attributes';
import type { DoStep, GetStep, ResourceVersion, Step } from '../schemas/compiled';
import { DEFAULT_CHECK_TIMEOUT_MS } from '../schemas/check-defaults';
import type { PipelineConfig, PipelineJob } from '../schemas/pipeline';
import {
  formatVersion,
  abandonedBy,
  buildWorkflowId,
  pipelineKeyOfWorkflowId,
  PIPELINE_QUERIES,
  PIPELINE_SIGNALS,
  PipelineConfigSchema,
  PIPELINE_UPDATES,
  DestroyRequestSchema,
  type DestroyRequest,
  type PinRequest,
  type PipelineEnd,
  type PipelineInput,
  type VersionToggle,
  VersionToggleSchema,
  type PipelineView,
  type SavedOutput,
  type SetBy,
  SET_BY_NEWER_BUILD,
} from '../schemas/pipeline-api';
import { messageOf } from './attempts';
import { decidePatches } from './patches';
import {
  applyRenames,
  createBuild,
  createRerun,
  finishBuild,
  KEEP_FINISHED,
  recordVersions,
  resolveInputs,
  saveOutput,
  schedule,
  setByNewer,
  renamesOf,
  resetChangedResources,
  resourcesToCheck,
  withRenamedResources,
  type JobBuild,
  type SchedulerState,
  type VersionRecord,
} from './scheduler';

/** How often running job builds are looked at: the delay between a build's end and the next scheduling decision. */
const POLL_MS = 2_000;
/** How often a pipeline set by a job build asks its parent whether it still sets it (Concourse's collector runs about this often). */
const PARENT_CHECK_MS = 15_000;
/** Continue as new past this many events: far below Temporal's 51,200, so a replay stays quick. */
const MAX_HISTORY = 2_000;

// Local activities: they run in the worker that runs this workflow (the shared queue's poller),
// in the same workflow task, with no queue of their own to poll.
const LOCAL_OPTIONS = { retry: { maximumAttempts: 5, nonRetryableErrorTypes: ['CheckFailed'] } };
const acts = proxyLocalActivities<PipelineActivities>({ ...LOCAL_OPTIONS, startToCloseTimeout: '10 minutes' });
/** A check ends itself at its check_timeout; the activity gets this much longer to say so. */
const CHECK_REPORT_MS = 60_000;

/** A container check's worker is taken for dead after this long without a heartbeat: the pipeline's next check looks again. */
const CONTAINER_CHECK_HEARTBEAT = '1 minute';

/**
 * An image type's check needs a container: a regular activity on a worker whose runtime runs
 * them (this one's, or one of the registry's), not tried again (the next check_every is the retry).
 */
async function checkInContainer(req: Parameters<PipelineActivities['checkResource']>[0]) {
  const taskQueue = await acts.containerWorker({ resource: req.resource.name, taskQueue: workflowInfo().taskQueue });
  return proxyActivities<PipelineActivities>({
    taskQueue,
    startToCloseTimeout: (req.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS) + CHECK_REPORT_MS,
    heartbeatTimeout: CONTAINER_CHECK_HEARTBEAT,
    retry: { maximumAttempts: 1 },
  }).checkResource(req);
}

export const pipelineQuery = defineQuery<PipelineView>(PIPELINE_QUERIES.view);
export const setConfigUpdate = defineUpdate<void, [PipelineConfig, SetBy?]>(PIPELINE_UPDATES.setConfig);
export const setParentUpdate = defineUpdate<void, [SetBy]>(PIPELINE_UPDATES.setParent);
export const triggerUpdate = defineUpdate<number, [string]>(PIPELINE_UPDATES.trigger);
/** rerun-build: answers the new build's number and the build it reruns (the first, for a rerun of a rerun). */
export const rerunUpdate = defineUpdate<{ number: number; rerunOf: number }, [{ job: string; number: number }]>(PIPELINE_UPDATES.rerun);
export const checkUpdate = defineUpdate<{ added: number; error?: string }, [{ resource: string; from?: ResourceVersion }]>(
  PIPELINE_UPDATES.check,
);
/** schedule-job: Concourse's RequestSchedule, which here is a scheduling pass (of every job) now. */
export const scheduleUpdate = defineUpdate<void, [string]>(PIPELINE_UPDATES.schedule);
export const pauseUpdate = defineUpdate<void, [{ job?: string; paused: boolean }]>(PIPELINE_UPDATES.pause);
export const pinUpdate = defineUpdate<void, [PinRequest]>(PIPELINE_UPDATES.pin);
export const toggleVersionUpdate = defineUpdate<ResourceVersion, [VersionToggle]>(PIPELINE_UPDATES.toggleVersion);
export const destroyUpdate = defineUpdate<void, [DestroyRequest?]>(PIPELINE_UPDATES.destroy);
export const renameUpdate = defineUpdate<PipelineInput, [{ to: string }]>(PIPELINE_UPDATES.rename);
export const outputSignal = defineSignal<[SavedOutput]>(PIPELINE_SIGNALS.output);

/**
 * A pipeline that runs itself: checks its resources every check_every and on check-resource,
 * records their versions, and starts job builds as ordinary `build` workflows with ids derived
 * from pipeline, job and number (so a replay or a retried start never makes a second build).
 * Its whole state is carried by continue-as-new, so its history stays short.
 */
export async function pipeline(input: PipelineInput): Promise<PipelineEnd> {
  const patches = decidePatches();
  let config = input.config;
  const state: SchedulerState = input.state;
  const lastChecked: Record<string, number> = input.lastChecked;
  const checkErrors: Record<string, string> = input.checkErrors;
  let setBy = input.setBy;
  const requests: { resource: string; from?: ResourceVersion; id: number }[] = [];
  const answered = new Map<number, { added: number; error?: string }>();
  let nextRequest = 0;
  let wake = false;
  let destroyed = false;
  let renamedTo: string | undefined;
  let archived: string | undefined;
  // Decided here, in the first activation (workflows/patches.ts), by pipelines only: builds do not pay its marker.
  const archivesAbandoned = patched('archive-abandoned');
  let parentAsked = 0;
  // The key names the pipeline in ids: a plain pipeline's is its name, as before instances; an
  // instance's is in its workflow id (pipeline-KEY), which nothing changes.
  const key = config.instanceVars ? pipelineKeyOfWorkflowId(workflowInfo().workflowId) : config.name;
  upsertSearchAttributes([{ key: CausewayPipeline, value: key }]);
  /** How messages name the pipeline: an instance as NAME/k:v,... */
  const label = () => config.ref ?? config.name;

  const job = (name: string): PipelineJob => {
    const j = config.jobs.find((x) => x.name === name);
    if (!j) throw new Error(`no job ${name} in pipeline ${label()} (jobs: ${config.jobs.map((x) => x.name).join(', ')})`);
    return j;
  };
  const resource = (name: string) => {
    const r = config.resources.find((x) => x.name === name);
    if (!r) throw new Error(`no resource ${name} in pipeline ${label()} (resources: ${config.resources.map((x) => x.name).join(', ')})`);
    return r;
  };
  const poke = () => (wake = true);

  /** Concourse's ErrSetByNewerBuild, refused before the update is accepted (nothing enters the history). */
  const refuseOlder = (by: SetBy | undefined) => {
    if (setByNewer(setBy, by))
      throw ApplicationFailure.create({
        type: SET_BY_NEWER_BUILD,
        nonRetryable: true,
        message: `pipeline ${label()} was set by ${setBy!.pipeline}/${setBy!.job} #${setBy!.number}, a newer build than ${by!.pipeline}/${by!.job} #${by!.number}`,
      });
  };

  setHandler(pipelineQuery, () => {
    const resolved = config.jobs.map((j) => [j.name, resolveInputs(j, config, state)] as const);
    return {
      config,
      state,
      lastChecked,
      checkErrors,
      setBy,
      next: Object.fromEntries(resolved.map(([name, r]) => [name, describe(r)])),
      nextInputs: Object.fromEntries(resolved.flatMap(([name, r]) => (r.ok ? [[name, r.inputs]] : []))),
    };
  });
  setHandler(
    setConfigUpdate,
    (next: PipelineConfig, by?: SetBy) => {
      // old_name: a job or resource takes over what the pipeline kept under its old name.
      const renames = renamesOf(config, next, state);
      applyRenames(state, renames, lastChecked, checkErrors);
      // A changed source is checked at once, from scratch.
      for (const name of resetChangedResources(withRenamedResources(config, renames.resources), next, state)) delete lastChecked[name];
      // Setting the pipeline clears the comment of each config pin (Concourse's resetResourcePins):
      // a comment without a pin-resource pin is one.
      for (const name of Object.keys(state.pinComments ?? {})) if (!state.pins[name]) delete state.pinComments![name];
      config = next;
      setBy = by;
      poke();
    },
    {
      validator: (next: PipelineConfig, by?: SetBy) => {
        PipelineConfigSchema.parse(next);
        // Taken now, it would end with this run: set-pipeline sets the pipeline again once it has ended.
        if (destroyed) throw new Error(`pipeline ${label()} is ending (destroyed, archived or renamed): set it again in a moment`);
        refuseOlder(by);
        // A swap of names is refused before the update is accepted.
        renamesOf(config, next, state);
      },
    },
  );
  // A set_pipeline step that found nothing to change still becomes the pipeline's setter (SetParentIDs).
  setHandler(
    setParentUpdate,
    (by) => {
      setBy = by;
    },
    { validator: refuseOlder },
  );
  setHandler(
    triggerUpdate,
    (name) => {
      const build = createBuild(state, name, true);
      if (patches('trigger-checks-first')) {
        const checks = resourcesToCheck(job(name), config, state);
        if (checks.length > 0) build.checks = checks;
      }
      poke();
      return build.number;
    },
    {
      validator: (name) => {
        if (job(name).disableManualTrigger) throw new Error(`job ${label()}/${name} has disable_manual_trigger: true`);
      },
    },
  );
  /** The build rerun-build reruns; one the pipeline does not hold, or that has no inputs yet, is refused. */
  const toRerun = (name: string, number: number): JobBuild => {
    if (job(name).disableReruns) throw new Error(`job ${label()}/${name} has disable_reruns: true`);
    const build = state.builds.find((b) => b.job === name && b.number === number);
    if (!build)
      throw new Error(
        `job ${label()}/${name} has no build #${number}${number <= (state.counters[name] ?? 0) ? ` any more (the pipeline keeps the newest ${KEEP_FINISHED} finished builds of each job)` : ''}`,
      );
    // As Concourse's, whose pending builds (reruns too) have no inputs ready.
    if (build.status === 'pending') throw new Error(`${label()}/${name} #${number} is pending: rerun a build that has started`);
    return build;
  };
  setHandler(
    rerunUpdate,
    ({ job: name, number }) => {
      const build = createRerun(state, toRerun(name, number));
      poke();
      return { number: build.number, rerunOf: build.rerunOf! };
    },
    { validator: ({ job: name, number }) => void toRerun(name, number) },
  );
  setHandler(
    checkUpdate,
    async (req) => {
      const id = nextRequest++;
      requests.push({ ...req, id });
      poke();
      await condition(() => answered.has(id));
      const answer = answered.get(id)!;
      answered.delete(id);
      return answer;
    },
    { validator: (req) => void resource(req.resource) },
  );
  setHandler(scheduleUpdate, () => void poke(), { validator: (name) => void job(name) });
  setHandler(
    pauseUpdate,
    ({ job: name, paused }) => {
      if (name === undefined) state.paused = paused;
      else state.pausedJobs = paused ? [...new Set([...state.pausedJobs, name])] : state.pausedJobs.filter((j) => j !== name);
      poke();
    },
    { validator: ({ job: name }) => void (name === undefined || job(name)) },
  );
  setHandler(
    pinUpdate,
    ({ resource: name, version, comment }) => {
      if (version) state.pins[name] = latestMatching(state, name, version)!.version;
      // A pin made again keeps its comment, as Concourse's.
      if (comment !== undefined) state.pinComments = { ...state.pinComments, [name]: comment };
      if (!version && comment === undefined) {
        delete state.pins[name];
        delete state.pinComments?.[name];
      }
      poke();
    },
    {
      validator: ({ resource: name, version, comment }) => {
        const r = resource(name);
        // Concourse's ErrPinnedThroughConfig: the file's pin wins until the file changes.
        if (version && r.pinned)
          throw new Error(
            `resource ${label()}/${name} is pinned in the pipeline's file (version: ${JSON.stringify(r.pinned)}): change or remove its version: there and set the pipeline again`,
          );
        if (version && !latestMatching(state, name, version))
          throw new Error(`resource ${label()}/${name} has no version matching ${JSON.stringify(version)}; see resource-versions`);
        if (comment !== undefined && !version && !state.pins[name] && !r.pinned)
          throw new Error(`could not save comment, make sure '${label()}/${name}' is pinned (pin it in the same command: -v KEY:VALUE)`);
      },
    },
  );
  setHandler(
    toggleVersionUpdate,
    ({ resource: name, version, enabled }) => {
      const found = latestMatching(state, name, version)!;
      const others = (state.disabled?.[name] ?? []).filter((seq) => seq !== found.seq);
      state.disabled = { ...state.disabled, [name]: enabled ? others : [...others, found.seq] };
      if (state.disabled[name].length === 0) delete state.disabled[name];
      poke();
      return found.version;
    },
    {
      validator: (req) => {
        const { resource: name, version } = VersionToggleSchema.parse(req);
        resource(name);
        if (!latestMatching(state, name, version))
          throw new Error(
            `could not find version matching ${JSON.stringify(version)} of ${label()}/${name}; see its versions with resource-versions`,
          );
      },
    },
  );
  // A put's version, sent by the build when the put succeeds (workflows/put.ts); a resource the
  // pipeline no longer has (its config changed while the build ran) is not recorded.
  setHandler(outputSignal, ({ job: name, number, resource: named, version }) => {
    // A build started before an old_name rename names the resource as it was then.
    const res = state.renamed?.resources[named] ?? named;
    if (config.resources.some((r) => r.name === res) && saveOutput(state, name, number, { resource: res, version })) poke();
  });
  setHandler(
    destroyUpdate,
    (req?: DestroyRequest) => {
      destroyed = true;
      // archive-pipeline's: the end says so, which `pipelines --include-archived` reads.
      archived ??= req?.archived;
      poke();
    },
    { validator: (req?: DestroyRequest) => void DestroyRequestSchema.optional().parse(req) },
  );
  // rename-pipeline: the pipeline ends and hands its whole state to the one the CLI starts under the new name.
  setHandler(
    renameUpdate,
    ({ to }) => {
      destroyed = true;
      renamedTo = to;
      poke();
      return { config, state, lastChecked, checkErrors, ...(setBy ? { setBy } : {}) };
    },
    {
      validator: (req: { to: string }) => {
        if (typeof req?.to !== 'string' || req.to === '') throw new Error('rename needs the new name: {to: NAME}');
        // A second rename (or one after destroy) would start a second pipeline with this one's state.
        if (destroyed) throw new Error(`pipeline ${label()} is being destroyed or renamed already`);
      },
    },
  );

  const check = async (name: string, from: ResourceVersion | undefined): Promise<{ added: number; error?: string }> => {
    const r = resource(name);
    const known = state.versions[name] ?? [];
    try {
      const timeoutMs = r.checkTimeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
      const req = {
        timeoutMs,
        pipeline: key,
        resource: r.ref,
        ...(config.varSources ? { varSources: config.varSources } : {}),
        from: from ?? known[known.length - 1]?.version ?? null,
      };
      const found =
        r.ref.type.kind === 'image' && patches('image-type-checks')
          ? await checkInContainer(req)
          : await proxyLocalActivities<PipelineActivities>({
              ...LOCAL_OPTIONS,
              startToCloseTimeout: timeoutMs + CHECK_REPORT_MS,
            }).checkResource(req);
      delete checkErrors[name];
      return { added: recordVersions(state, name, found) };
    } catch (err) {
      checkErrors[name] = messageOf(err);
      return { added: 0, error: checkErrors[name] };
    } finally {
      lastChecked[name] = Date.now();
    }
  };

  while (!destroyed) {
    wake = false;
    // Concourse's ArchiveAbandonedPipelines: a pipeline its parent no longer sets archives itself.
    if (archivesAbandoned && setBy && Date.now() >= parentAsked + PARENT_CHECK_MS) {
      parentAsked = Date.now();
      // A pipeline that sets itself is its own parent: asked here, not through a query of itself.
      archived =
        setBy.pipeline === key
          ? abandonedBy(setBy, { config, state, lastChecked, checkErrors, next: {} })
          : await acts.abandoned({ setBy }).catch(() => undefined);
      if (archived) {
        destroyed = true;
        break;
      }
    }
    // Requested checks first (check-resource waits for them), then the periodic ones due.
    for (const req of requests.splice(0)) answered.set(req.id, await check(req.resource, req.from));
    // trigger-job builds check their resources first, paused or not (Concourse's build starter
    // creates the checks whether or not it may start the build); one check serves every such build.
    const triggered = state.builds.filter((b) => b.status === 'pending' && b.checks?.length);
    if (triggered.length > 0) {
      const names = new Set(triggered.flatMap((b) => b.checks!));
      await Promise.all([...names].filter((n) => config.resources.some((r) => r.name === n)).map((n) => check(n, undefined)));
      for (const b of triggered) delete b.checks;
    }
    if (!state.paused) {
      const now = Date.now();
      const due = config.resources.filter((r) => r.checkEveryMs > 0 && now >= (lastChecked[r.name] ?? 0) + r.checkEveryMs);
      await Promise.all(due.map((r) => check(r.name, undefined)));
    }

    const running = state.builds.filter((b) => b.status === 'started');
    if (running.length > 0) {
      const resourceNames = new Set(config.resources.map((r) => r.name));
      const ended = await acts.buildOutcomes({ workflowIds: running.map((b) => buildWorkflowId(key, b)) });
      for (const b of running) {
        const outcome = ended[buildWorkflowId(key, b)];
        // Histories from before build outputs hold the bare status.
        if (typeof outcome === 'string') finishBuild(state, b.job, b.number, outcome);
        // A resource the pipeline no longer has (its config changed while the build ran) is not recorded.
        else if (outcome)
          finishBuild(
            state,
            b.job,
            b.number,
            outcome.status,
            outcome.outputs.filter((o) => resourceNames.has(o.resource)),
          );
      }
    }

    const legacy = {
      anyPendingHoldsGroup: () => !patches('serial-group-skips-unresolved'),
      triggerBesideManual: () => !patches('trigger-checks-first'),
    };
    for (const build of schedule(config, state, legacy)) {
      try {
        await acts.startJobBuild({
          workflowId: buildWorkflowId(key, build),
          taskQueue: workflowInfo().taskQueue,
          pipeline: key,
          ...(config.instanceVars ? { instanceVars: config.instanceVars } : {}),
          job: build.job,
          number: build.number,
          plan: { ...job(build.job).plan, plan: withVersions(job(build.job).plan.plan, build) as DoStep },
        });
      } catch (err) {
        finishBuild(state, build.job, build.number, 'errored');
        checkErrors[`job ${build.job}`] = `build ${build.number} could not start: ${messageOf(err)}`;
      }
    }

    if (workflowInfo().historyLength > MAX_HISTORY && requests.length === 0) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof pipeline>({ config, state, lastChecked, checkErrors, setBy });
    }
    const stillRunning = state.builds.some((b) => b.status === 'started');
    const parentDue = archivesAbandoned && setBy ? [parentAsked + PARENT_CHECK_MS - Date.now()] : [];
    await condition(
      () => wake || requests.length > 0,
      Math.max(1, Math.min(nextWake(config, state, lastChecked, stillRunning), ...parentDue)),
    );
  }
  await condition(allHandlersFinished);
  // Read by set-pipeline from the closed workflow's result, which needs no worker (a query does).
  return {
    counters: state.counters,
    ...(renamedTo ? { renamedTo } : {}),
    ...(archived ? { archived, name: config.name, ...(config.instanceVars ? { instanceVars: config.instanceVars } : {}) } : {}),
  };
}

/** Milliseconds until the next periodic check is due, or the next poll of running builds. */
function nextWake(config: PipelineConfig, state: SchedulerState, lastChecked: Record<string, number>, running: boolean): number {
  const now = Date.now();
  const checks = state.paused
    ? []
    : config.resources.filter((r) => r.checkEveryMs > 0).map((r) => (lastChecked[r.name] ?? 0) + r.checkEveryMs - now);
  const waits = [...checks, ...(running ? [POLL_MS] : []), 24 * 3600_000];
  return Math.max(1, Math.min(...waits));
}

/** The newest recorded version of a resource that has every key of `version`. */
function latestMatching(state: SchedulerState, resource: string, version: ResourceVersion): VersionRecord | undefined {
  const list = state.versions[resource] ?? [];
  for (let i = list.length - 1; i >= 0; i--) if (Object.entries(version).every(([k, v]) => list[i].version[k] === v)) return list[i];
  return undefined;
}

/** The job's plan with each get pinned to the version the scheduler chose for it. */
function withVersions(step: Step, build: JobBuild): Step {
  const hooks = step.hooks && Object.fromEntries(Object.entries(step.hooks).map(([k, h]) => [k, h && withVersions(h, build)]));
  const own: Step = hooks ? { ...step, hooks } : step;
  if (own.kind === 'get') {
    const chosen = build.inputs[own.name];
    return chosen ? ({ ...own, version: chosen.version } satisfies GetStep) : own;
  }
  if (own.kind === 'do' || own.kind === 'in_parallel') return { ...own, steps: own.steps.map((s) => withVersions(s, build)) };
  if (own.kind === 'try') return { ...own, step: withVersions(own.step, build) };
  return own;
}

function describe(r: ReturnType<typeof resolveInputs>): string {
  return r.ok
    ? Object.entries(r.inputs)
        .map(([n, v]) => `${n}@${formatVersion(v.version)}`)
        .join(' ')
    : r.reason;
}
