// The shared table of plans: each plan with the step tree it must give, on every runtime
// (test/workflows/plans.test.ts: fake, local; test/k8s/node/plans.test.ts: kubernetes on the real
// node; test/containerd/plans.test.ts: containerd). Steps are `sh -c` scripts of exit codes and
// sleeps only, so every runtime runs them the same way (the fake runtime with its own small shell).
import type { StepStatus } from '../../schemas/build';

export interface PlanCase {
  name: string;
  /** the plan's steps, as YAML */
  plan: string;
  status: 'succeeded' | 'failed' | 'errored' | 'aborted';
  /** every step's id and its state at the end (the root, `plan`, ends as the build) */
  steps: Record<string, string>;
}

/** A one-task step (a flow map, so it nests anywhere): `sh -c script`, on an image for the runtimes that need one. */
export function task(name: string, script: string, extra: Record<string, unknown> = {}): string {
  const config = {
    platform: 'linux',
    // untagged (latest): the tag the containerd tests' local registry serves
    image_resource: { type: 'registry-image', source: { repository: 'busybox' } },
    run: { path: 'sh', args: ['-c', script] },
  };
  return JSON.stringify({ task: name, config, ...extra });
}

const hooks = (step: string, on: Record<string, unknown>) => JSON.stringify({ ...JSON.parse(step), ...on });
const parsed = (step: string) => JSON.parse(step) as unknown;

export const PLANS: PlanCase[] = [
  {
    name: 'a sequence that succeeds',
    plan: `- ${task('a', 'true')}\n- ${task('b', 'exit 0')}`,
    status: 'succeeded',
    steps: { 'plan.0': 'succeeded', 'plan.1': 'succeeded' },
  },
  {
    name: 'a failing step skips the rest; on_failure and ensure run',
    plan: `- ${hooks(task('bad', 'exit 3'), { on_failure: parsed(task('f', 'true')), on_success: parsed(task('s', 'true')), ensure: parsed(task('e', 'true')) })}\n- ${task('after', 'true')}`,
    status: 'failed',
    steps: {
      'plan.0': 'failed',
      'plan.0.on_failure': 'succeeded',
      'plan.0.ensure': 'succeeded',
      'plan.1': 'skipped',
    },
  },
  {
    name: 'try masks a failure',
    plan: `- {try: ${task('bad', 'exit 1')}}\n- ${task('after', 'true')}`,
    status: 'succeeded',
    steps: { 'plan.0': 'succeeded', 'plan.0.try': 'failed', 'plan.1': 'succeeded' },
  },
  {
    name: 'in_parallel runs every step and fails with one',
    plan: `- in_parallel: [${task('a', 'true')}, ${task('b', 'exit 1')}, ${task('c', 'sleep 0.2')}]`,
    status: 'failed',
    steps: {
      'plan.0': 'failed',
      'plan.0.in_parallel.0': 'succeeded',
      'plan.0.in_parallel.1': 'failed',
      'plan.0.in_parallel.2': 'succeeded',
    },
  },
  {
    name: 'across: one iteration per value, each with its own state',
    plan: `- ${JSON.stringify({ ...JSON.parse(task('each', '[ ((.:v)) != 2 ]')), across: [{ var: 'v', values: [1, 2, 3] }] })}`,
    status: 'failed',
    steps: { 'plan.0': 'failed', 'plan.0.across.0': 'succeeded', 'plan.0.across.1': 'failed', 'plan.0.across.2': 'succeeded' },
  },
  {
    name: 'a timeout ends a hanging step failed',
    plan: `- ${JSON.stringify({ ...JSON.parse(task('slow', 'sleep 1000')), timeout: '2s' })}\n- ${task('after', 'true')}`,
    status: 'failed',
    steps: { 'plan.0': 'failed', 'plan.1': 'skipped' },
  },
  {
    name: 'a do runs its steps in order, on_success after them',
    plan: `- {do: [${task('a', 'true')}, ${task('b', 'true')}], on_success: ${task('s', 'true')}}`,
    status: 'succeeded',
    steps: { 'plan.0': 'succeeded', 'plan.0.do.0': 'succeeded', 'plan.0.do.1': 'succeeded', 'plan.0.on_success': 'succeeded' },
  },
];

/** The step tree of a build as the table states it: every step's id and state. */
export function stepTree(steps: StepStatus[] | undefined): Record<string, string> {
  return Object.fromEntries((steps ?? []).map((s) => [s.id, s.state]));
}
