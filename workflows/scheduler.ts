// Concourse's scheduler (atc/scheduler: algorithm/, buildstarter.go) as pure code over the
// pipeline workflow's state: which versions a job's next build gets, when a build is created
// (a trigger input with a version the job never used), and when a pending build may start
// (paused, max_in_flight, serial_groups). Deterministic: no clock, no I/O.
import type { ResourceVersion } from '../schemas/compiled';
import type { JobInput, PipelineConfig, PipelineJob } from '../schemas/pipeline';
import {
  isDisabled,
  type BuildOutput,
  type InputVersion,
  type JobBuild,
  type JobBuildStatus,
  type SchedulerState,
  type SetBy,
  type VersionRecord,
} from '../schemas/pipeline-api';

export type { InputVersion, JobBuild, JobBuildStatus, SchedulerState, VersionRecord };

/** The versions a build went through: its inputs and what its puts made (Concourse's successful_build_outputs). */
const versionsOf = (b: JobBuild): InputVersion[] => [...Object.values(b.inputs), ...(b.outputs ?? [])];

/**
 * Finished builds kept per job (and versions per resource, KEEP_VERSIONS) so the state a
 * continue-as-new carries stays bounded; `passed:` looks back this far. Concourse keeps all
 * in its database; 100 builds and 1,000 versions cover every practical `passed` chain.
 */
export const KEEP_FINISHED = 100;
export const KEEP_VERSIONS = 1000;

export type Resolution = { ok: true; inputs: Record<string, InputVersion> } | { ok: false; reason: string };

const matches = (pin: ResourceVersion, v: ResourceVersion) => Object.entries(pin).every(([k, x]) => v[k] === x);

/** Appends the versions a check reported (oldest first) that the resource does not have yet; returns how many were new. */
export function recordVersions(state: SchedulerState, resource: string, found: ResourceVersion[]): number {
  const list = (state.versions[resource] ??= []);
  const known = new Set(list.map((v) => versionKey(v.version)));
  let added = 0;
  for (const version of found) {
    const key = versionKey(version);
    if (known.has(key)) continue;
    known.add(key);
    const seq = Math.max(list[list.length - 1]?.seq ?? 0, state.lastSeq?.[resource] ?? 0) + 1;
    list.push({ seq, version });
    added++;
  }
  if (list.length > KEEP_VERSIONS) list.splice(0, list.length - KEEP_VERSIONS);
  return added;
}

/**
 * A resource whose type or source changed is another resource to Concourse (a new config
 * scope): its versions and pin are dropped, so no build gets a version of the old source.
 * Returns the names of the resources reset.
 */
export function resetChangedResources(old: PipelineConfig, next: PipelineConfig, state: SchedulerState): string[] {
  const reset: string[] = [];
  for (const r of next.resources) {
    const before = old.resources.find((x) => x.name === r.name);
    if (!before || JSON.stringify(before.ref) === JSON.stringify(r.ref)) continue;
    const list = state.versions[r.name] ?? [];
    state.lastSeq = { ...state.lastSeq, [r.name]: Math.max(list[list.length - 1]?.seq ?? 0, state.lastSeq?.[r.name] ?? 0) };
    delete state.versions[r.name];
    delete state.pins[r.name];
    delete state.pinComments?.[r.name];
    delete state.disabled?.[r.name];
    reset.push(r.name);
  }
  return reset;
}

/** A version's identity: its keys sorted, so {a,b} and {b,a} are one version. */
export function versionKey(v: ResourceVersion): string {
  return JSON.stringify(
    Object.keys(v)
      .sort()
      .map((k) => [k, v[k]]),
  );
}

function pinOf(input: JobInput, config: PipelineConfig, state: SchedulerState): ResourceVersion | undefined {
  if (typeof input.version === 'object') return input.version;
  return state.pins[input.resource] ?? config.resources.find((r) => r.name === input.resource)?.pinned;
}

/**
 * A passed input's versions as Concourse's resolver meets them (successful_build_outputs): the
 * newest upstream build first, and within a build its outputs before its inputs, so a job
 * that gets a version and puts another hands on the one it put (testflight's inputs_outputs.yml).
 */
function byUpstreamBuild(input: JobInput, state: SchedulerState, newestFirst: VersionRecord[]): VersionRecord[] {
  const rank = new Map<number, number>();
  state.builds.forEach((b, index) => {
    if (b.status !== 'succeeded' || !input.passed.includes(b.job)) return;
    const mark = (v: InputVersion, output: boolean) => {
      const r = index * 2 + (output ? 1 : 0);
      if (v.resource === input.resource && r > (rank.get(v.seq) ?? -1)) rank.set(v.seq, r);
    };
    Object.values(b.inputs).forEach((v) => mark(v, false));
    (b.outputs ?? []).forEach((v) => mark(v, true));
  });
  return [...newestFirst].sort((a, b) => (rank.get(b.seq) ?? -1) - (rank.get(a.seq) ?? -1));
}

/** The versions an input may take, best first, before `passed` builds must agree with each other. */
function candidates(job: PipelineJob, input: JobInput, config: PipelineConfig, state: SchedulerState): VersionRecord[] | string {
  const all = state.versions[input.resource] ?? [];
  const pin = pinOf(input, config, state);
  // A disabled version is given to no build, but a pinned one is to an input without `passed`
  // (Concourse's pinned resolver does not look; its group resolver, for `passed`, does).
  const enabled = all.filter((v) => !isDisabled(state, input.resource, v.seq));
  let list = enabled;
  if (pin) {
    const found = [...all].reverse().find((v) => matches(pin, v.version));
    if (!found)
      return `pinned version ${JSON.stringify(pin)} of ${input.resource} is not among its versions (check it with check-resource --from)`;
    if (input.passed.length > 0 && isDisabled(state, input.resource, found.seq))
      return `pinned version ${JSON.stringify(pin)} of ${input.resource} is disabled (enable-resource-version)`;
    list = [found];
  } else if (enabled.length === 0 && all.length > 0) return `every version of ${input.resource} is disabled (enable-resource-version)`;
  if (input.passed.length > 0) {
    list = list.filter((v) =>
      input.passed.every((upstream) =>
        state.builds.some(
          (b) =>
            b.job === upstream && b.status === 'succeeded' && versionsOf(b).some((i) => i.resource === input.resource && i.seq === v.seq),
        ),
      ),
    );
  }
  if (list.length === 0)
    return input.passed.length > 0
      ? `no version of ${input.resource} passed ${input.passed.join(', ')}`
      : `${input.resource} has no version yet`;
  const newestFirst = [...list].reverse();
  if (pin) return newestFirst;
  if (input.version !== 'every') return input.passed.length > 0 ? byUpstreamBuild(input, state, newestFirst) : newestFirst;
  // version: every (versions_db.go NextEveryVersion): the next version after the newest this
  // job used; none newer: that newest again; never used: the latest.
  const used = state.builds
    .filter((b) => b.job === job.name)
    .flatMap((b) =>
      Object.values(b.inputs)
        .filter((i) => i.resource === input.resource)
        .map((i) => i.seq),
    );
  if (used.length === 0) return newestFirst;
  const last = Math.max(...used);
  return [...list.filter((v) => v.seq > last), ...newestFirst.filter((v) => v.seq <= last)];
}

/**
 * The versions of a job's next build: each input's best candidate such that, for every job
 * named in `passed`, one succeeded build of it used all the chosen versions together
 * (Concourse's group resolver), found by backtracking in input order.
 */
export function resolveInputs(job: PipelineJob, config: PipelineConfig, state: SchedulerState): Resolution {
  const lists: VersionRecord[][] = [];
  for (const input of job.inputs) {
    const c = candidates(job, input, config, state);
    if (typeof c === 'string') return { ok: false, reason: `${input.name}: ${c}` };
    lists.push(c);
  }
  const chosen: VersionRecord[] = [];
  const together = (upstream: string): boolean =>
    state.builds.some(
      (b) =>
        b.job === upstream &&
        b.status === 'succeeded' &&
        job.inputs.every(
          (input, i) =>
            i >= chosen.length ||
            !input.passed.includes(upstream) ||
            versionsOf(b).some((x) => x.resource === input.resource && x.seq === chosen[i].seq),
        ),
    );
  const search = (i: number): boolean => {
    if (i === job.inputs.length) return true;
    for (const v of lists[i]) {
      chosen.push(v);
      if (job.inputs[i].passed.every(together) && search(i + 1)) return true;
      chosen.pop();
    }
    return false;
  };
  if (!search(0))
    return {
      ok: false,
      reason: `no set of versions went through ${[...new Set(job.inputs.flatMap((i) => i.passed))].join(', ')} together`,
    };
  return {
    ok: true,
    inputs: Object.fromEntries(
      job.inputs.map((input, i) => [input.name, { resource: input.resource, seq: chosen[i].seq, version: chosen[i].version }]),
    ),
  };
}

/** Whether a trigger input has a version this job never used as that input (FirstOccurrence). */
export function hasNewTriggerInput(job: PipelineJob, inputs: Record<string, InputVersion>, state: SchedulerState): boolean {
  return job.inputs.some(
    (input) =>
      input.trigger &&
      !state.builds.some(
        (b) =>
          b.job === job.name && b.inputs[input.name]?.resource === input.resource && b.inputs[input.name]?.seq === inputs[input.name].seq,
      ),
  );
}

/**
 * The resources a trigger-job build of `job` checks before its inputs are resolved, as
 * Concourse's build starter does for a manually triggered build (createChecks, then
 * ResourcesChecked): those of its inputs without `passed` (a check would not change what
 * passed upstream) whose resource is not pinned.
 */
export function resourcesToCheck(job: PipelineJob, config: PipelineConfig, state: SchedulerState): string[] {
  const pinned = (r: string) => state.pins[r] !== undefined || config.resources.find((x) => x.name === r)?.pinned !== undefined;
  return [...new Set(job.inputs.filter((i) => i.passed.length === 0 && !pinned(i.resource)).map((i) => i.resource))];
}

/** Gives a job a new pending build: the next number. */
export function createBuild(state: SchedulerState, job: string, manual: boolean): JobBuild {
  const number = (state.counters[job] ?? 0) + 1;
  state.counters[job] = number;
  const build: JobBuild = { job, number, status: 'pending', manual, inputs: {} };
  state.builds.push(build);
  return build;
}

/**
 * rerun-build: a new pending build of the job with the inputs of build `number` (Concourse's
 * RerunBuild); a rerun of a rerun reruns the first build. Numbered as any other build, the next
 * number: build numbers here are whole numbers (workflow ids, the put's output signal, the
 * order of set_pipeline's setters), where Concourse names a rerun N.1, N.2.
 */
export function createRerun(state: SchedulerState, original: JobBuild): JobBuild {
  const build = createBuild(state, original.job, false);
  build.rerunOf = original.rerunOf ?? original.number;
  build.inputs = { ...original.inputs };
  return build;
}

const running = (b: JobBuild) => b.status === 'started';

export interface ScheduleOptions {
  /**
   * Whether any earlier pending build of a serial group holds it, as before this followed
   * Concourse (histories from then replay with it). Asked only where the two rules differ.
   */
  anyPendingHoldsGroup?: () => boolean;
  /**
   * Whether a new trigger input gives a job a pending build while a trigger-job build of it is
   * pending, as before this followed Concourse. Asked only where the two rules differ.
   */
  triggerBesideManual?: () => boolean;
}

/**
 * One scheduling pass: creates a pending build for each job whose trigger inputs have a new
 * version and that has no pending build (Concourse's EnsurePendingBuildExists), then starts
 * pending builds, oldest first, that their job's max_in_flight and serial groups allow, giving
 * each the versions resolved now. Returns the builds it started (their `inputs` set), for the
 * workflow to start as build workflows.
 *
 * A job's builds start in order: one that cannot start yet holds the job's later ones
 * (Concourse's TryStartPendingBuildsForJob stops at it), which matters for a trigger-job build
 * still checking its resources. A serial group is held by its running builds and by its oldest
 * pending build that could start: one of a job that is not paused and whose inputs resolve
 * (Concourse's getNextPendingBuildBySerialGroup: `paused = false`, `inputs_determined`). A
 * pending build without inputs (a trigger-job of a job whose resource has no version yet)
 * holds nobody.
 */
export function schedule(config: PipelineConfig, state: SchedulerState, opts: ScheduleOptions = {}): JobBuild[] {
  if (state.paused) return [];
  const resolved = new Map<string, Resolution>();
  const resolve = (job: PipelineJob) => {
    if (!resolved.has(job.name)) resolved.set(job.name, resolveInputs(job, config, state));
    return resolved.get(job.name)!;
  };
  const jobOf = (name: string) => config.jobs.find((j) => j.name === name);
  for (const job of config.jobs) {
    if (state.pausedJobs.includes(job.name)) continue;
    const pending = state.builds.filter((b) => b.job === job.name && b.status === 'pending');
    if (pending.some((b) => !b.manual)) continue;
    const r = resolve(job);
    if (!r.ok || !hasNewTriggerInput(job, r.inputs, state)) continue;
    if (pending.length > 0 && opts.triggerBesideManual?.() !== true) continue;
    createBuild(state, job.name, false);
  }

  const tryStart = (build: JobBuild, job: PipelineJob): boolean => {
    if (state.pausedJobs.includes(job.name)) return false;
    const inFlight = state.builds.filter((b) => b.job === job.name && running(b)).length;
    if (job.maxInFlight !== undefined && inFlight >= job.maxInFlight) return false;
    const inGroup = (b: JobBuild) => job.serialGroups.some((g) => jobOf(b.job)?.serialGroups.includes(g));
    if (state.builds.some((b) => running(b) && inGroup(b))) return false;
    const canStart = (b: JobBuild) => !state.pausedJobs.includes(b.job) && resolve(jobOf(b.job)!).ok;
    const earlier = state.builds
      .slice(0, state.builds.indexOf(build))
      .some((b) => b.status === 'pending' && inGroup(b) && (canStart(b) || opts.anyPendingHoldsGroup?.() === true));
    if (earlier) return false;
    // A trigger-job build checks its resources first (the pipeline workflow runs the checks).
    if (build.checks?.length) return false;
    // A rerun has its inputs already (Concourse's rerunBuild adopts them instead of resolving).
    if (build.rerunOf === undefined) {
      const r = resolve(job);
      if (!r.ok) return false;
      build.inputs = r.inputs;
    }
    build.status = 'started';
    // Versions used change what `every` and the next trigger see.
    resolved.delete(job.name);
    return true;
  };
  const started: JobBuild[] = [];
  const held = new Set<string>();
  for (const build of pendingInJobOrder(state)) {
    const job = jobOf(build.job);
    if (!job || held.has(job.name)) continue;
    if (tryStart(build, job)) started.push(build);
    else held.add(job.name);
  }
  return started;
}

/**
 * The pending builds, each job's in the order Concourse's GetPendingBuilds gives them (a rerun
 * of build N right after N's place: `COALESCE(rerun_of, id)`), the jobs interleaved as created.
 * Without reruns that is the order they were created in.
 */
function pendingInJobOrder(state: SchedulerState): JobBuild[] {
  const pending = state.builds.filter((b) => b.status === 'pending');
  const place = (b: JobBuild) => b.rerunOf ?? b.number;
  const queues = new Map<string, JobBuild[]>();
  for (const b of pending) queues.set(b.job, [...(queues.get(b.job) ?? []), b]);
  for (const q of queues.values()) q.sort((a, b) => place(a) - place(b) || a.number - b.number);
  return pending.map((b) => queues.get(b.job)!.shift()!);
}

/**
 * A version a put of a build made (Concourse's SaveOutput, called when the put succeeds,
 * whatever the build does next): it becomes a version of its resource, before any check finds
 * it, and an output of the build. `passed` counts a build's outputs only once it succeeded
 * (Concourse's successful_build_outputs), so a failed build's put feeds `get`s without
 * `passed` but no job downstream of it. A build the state does not hold (a pipeline destroyed
 * and set again since it started) records nothing. Returns whether anything was recorded.
 */
export function saveOutput(state: SchedulerState, job: string, number: number, out: BuildOutput): boolean {
  const build = findBuild(state, job, number);
  if (!build) return false;
  recordVersions(state, out.resource, [out.version]);
  const key = versionKey(out.version);
  const record = (state.versions[out.resource] ?? []).find((v) => versionKey(v.version) === key);
  if (!record) return false;
  const outputs = (build.outputs ??= []);
  if (!outputs.some((o) => o.resource === out.resource && o.seq === record.seq))
    outputs.push({ resource: out.resource, seq: record.seq, version: record.version });
  return true;
}

/**
 * Records how a build ended and drops the oldest finished builds beyond KEEP_FINISHED per job.
 * `outputs` are versions its puts made that the build's result lists (saved as saveOutput
 * does; the put's own signal has usually saved them already).
 */
export function finishBuild(state: SchedulerState, job: string, number: number, status: JobBuildStatus, outputs: BuildOutput[] = []): void {
  const build = state.builds.find((b) => b.job === job && b.number === number);
  if (build) {
    for (const out of outputs) saveOutput(state, job, number, out);
    build.status = status;
  }
  const finished = state.builds.filter((b) => b.job === job && b.status !== 'pending' && !running(b));
  const drop = new Set(finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED)));
  if (drop.size > 0) state.builds = state.builds.filter((b) => !drop.has(b));
}

/**
 * Whether the build that set a pipeline last (`last`) is newer than the one setting it now
 * (`by`), so that `by` may not (Concourse's SavePipeline and SetParentIDs: a build may set a
 * pipeline last set by a person or by an older build, never by a newer one). Builds of one
 * job are ordered by number; of different jobs by when they started, where Concourse compares
 * its global build ids. A person's set (`by` absent) is never refused; the same build may set
 * again (a retried step).
 */
export function setByNewer(last: SetBy | undefined, by: SetBy | undefined): boolean {
  if (!last || !by) return false;
  if (last.pipeline === by.pipeline && last.job === by.job) return last.number > by.number;
  return last.startedAt > by.startedAt;
}

/** One `old_name:` of a job or resource that takes over what the pipeline kept under the old name. */
export interface Rename {
  from: string;
  to: string;
}

/**
 * The renames a new config asks for, in the order to apply them, as Concourse's
 * updateJobsName/updateResourcesName (atc/db/team.go): a job or resource whose `old_name` the
 * pipeline knows (in its config, or kept in its state after it left the config) takes over
 * that name's history (what the new name had goes; a job that keeps the old name starts without
 * builds). A swap or any cycle of renames is refused, as there ("... name swapping
 * is not supported at this time"); a chain (a→b, b→c) goes from its end. Throws Error.
 */
export function renamesOf(old: PipelineConfig, next: PipelineConfig, state: SchedulerState): { jobs: Rename[]; resources: Rename[] } {
  // A job's counter stays when it is renamed (ids are never reused): its history is known by the rename.
  const knownJob = (n: string) => old.jobs.some((j) => j.name === n) || (state.counters[n] !== undefined && !state.renamed?.jobs[n]);
  const knownResource = (n: string) => old.resources.some((r) => r.name === n) || state.versions[n] !== undefined;
  const asked = (items: { name: string; oldName?: string }[], known: (n: string) => boolean) =>
    items.filter((i) => i.oldName && i.oldName !== i.name && known(i.oldName)).map((i) => ({ from: i.oldName!, to: i.name }));
  return {
    jobs: ordered(asked(next.jobs, knownJob), 'job'),
    resources: ordered(asked(next.resources, knownResource), 'resource'),
  };
}

function ordered(renames: Rename[], kind: string): Rename[] {
  const out: Rename[] = [];
  const left = [...renames];
  while (left.length > 0) {
    // A rename goes once nothing left still moves away from the name it takes.
    const i = left.findIndex((r) => !left.some((o) => o !== r && o.from === r.to));
    if (i < 0)
      throw new Error(
        `${kind} name swapping is not supported at this time (old_name: ${left.map((r) => `${r.from} → ${r.to}`).join(', ')})`,
      );
    out.push(...left.splice(i, 1));
  }
  return out;
}

/**
 * Applies renames to the state and to the per-resource check records: a job's builds,
 * numbering and pause move to its new name (its old builds keep their workflow ids); a
 * resource's versions, pins, disabled versions and check records move, and builds' inputs and
 * outputs name it anew. What the new name had kept after leaving the config goes first, as
 * Concourse deletes that inactive row. The old job name keeps its counter, so a job that takes
 * the old name later numbers on after it: build ids are never reused.
 */
export function applyRenames(
  state: SchedulerState,
  renames: { jobs: Rename[]; resources: Rename[] },
  lastChecked: Record<string, number>,
  checkErrors: Record<string, string>,
): void {
  if (renames.jobs.length + renames.resources.length === 0) return;
  const renamed = (state.renamed ??= { jobs: {}, resources: {} });
  for (const { from, to } of renames.jobs) {
    state.builds = state.builds.filter((b) => b.job !== to);
    for (const b of state.builds)
      if (b.job === from) {
        b.workflowJob ??= from;
        b.job = to;
      }
    // Past the new name's own numbers too: the builds dropped above keep their workflow ids.
    state.counters[to] = Math.max(state.counters[to] ?? 0, state.counters[from] ?? 0);
    state.pausedJobs = state.pausedJobs.filter((j) => j !== to).map((j) => (j === from ? to : j));
    moveKey(checkErrors, `job ${from}`, `job ${to}`);
    repoint(renamed.jobs, from, to);
  }
  for (const { from, to } of renames.resources) {
    const records: (Record<string, unknown> | undefined)[] = [
      state.versions,
      state.pins,
      state.pinComments,
      state.lastSeq,
      state.disabled,
      lastChecked,
      checkErrors,
    ];
    for (const record of records) if (record) moveKey(record, from, to);
    for (const v of state.builds.flatMap(versionsOf)) if (v.resource === from) v.resource = to;
    repoint(renamed.resources, from, to);
  }
}

function moveKey<T>(record: Record<string, T>, from: string, to: string): void {
  delete record[to];
  if (from in record) record[to] = record[from];
  delete record[from];
}

/** Records from → to, and points every earlier name of `from` at `to` (a chain of renames). */
function repoint(aliases: Record<string, string>, from: string, to: string): void {
  for (const [k, v] of Object.entries(aliases)) if (v === from) aliases[k] = to;
  aliases[from] = to;
  delete aliases[to];
}

/** The config as the renames leave it: its resources under their new names, to compare the new config's with. */
export function withRenamedResources(config: PipelineConfig, renames: Rename[]): PipelineConfig {
  let resources = config.resources;
  for (const { from, to } of renames)
    resources = resources.filter((r) => r.name !== to).map((r) => (r.name === from ? { ...r, name: to, ref: { ...r.ref, name: to } } : r));
  return { ...config, resources };
}

/** A build by the job name it was started under or its name now, and its number. */
export function findBuild(state: SchedulerState, job: string, number: number): JobBuild | undefined {
  return (
    state.builds.find((b) => b.job === job && b.number === number) ?? state.builds.find((b) => b.workflowJob === job && b.number === number)
  );
}
