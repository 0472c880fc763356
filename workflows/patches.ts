// The workflow code's patches (Temporal's versioning), and where a workflow decides them.
//
// A query answered while a local activity runs ends the workflow task with the activity's result,
// and the code after the activity runs in a new task (sdk-core managed_run.rs, "If there are
// pending LA resolutions, and we're responding to a query here ... force a new task"). A replay
// runs that code in the first task, before core has told it of the patch markers the second one
// recorded (it looks ahead one task, workflow_machines.rs), so `patched()` answers false there
// and the replay fails: TMPRL1100 "Non-deprecated patch marker encountered ... but there is no
// corresponding change command". A build's claim and a pipeline's activities are local, and the
// CLI, `causeway status` and the UI query at any time: a build queried during its claim could not
// be queried once ended, nor resumed by another worker. So a workflow decides every patch once, in
// its first activation, before anything can split a task.
import { patched } from '@temporalio/workflow';

/** Workflows started since take every patch below, with one marker recorded before any local activity. */
const DECIDED_AT_START = 'patches-decided-at-start';

/**
 * Patches of workflows started before DECIDED_AT_START, each decided where the code first needs
 * it (replays of those must keep asking there). A new patch is not one of these: it is decided in
 * decidePatches beside DECIDED_AT_START.
 */
export type Patch =
  /** a build's task activities under ids the worker-wait watch names (before: the SDK's ids, no watch) */
  | 'worker-wait-note'
  /** a step without a modifier skips that modifier's async wrapper (context.ts, passThrough; before: every wrapper) */
  | 'lean-step-wrappers'
  /** a task that exits non-zero fails its activity (before: completed it) */
  | 'task-failure-fails-activity'
  /** a put gives its pipeline its version at once (before: no signal) */
  | 'put-saves-output'
  /** a timeout fails the step (before: errored the build) */
  | 'timeout-fails-the-step'
  /** at most PARTS_IN_FLIGHT parts at once (before: every part) */
  | 'parts-in-flight-capped'
  /** an image type's check runs in a container (before: in the local activity, where it failed) */
  | 'image-type-checks'
  /** a serial group is held only by a pending build that could start (before: by any) */
  | 'serial-group-skips-unresolved'
  /** a trigger-job build checks its inputs' resources first (before: took the versions known) */
  | 'trigger-checks-first';

/** Whether this workflow takes a patch. */
export type Patches = (patch: Patch) => boolean;

/** First thing in a workflow function (before any await): the patches it takes. */
export function decidePatches(): Patches {
  const all = patched(DECIDED_AT_START);
  return (patch) => all || patched(patch);
}
