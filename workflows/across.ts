import type { AcrossVar, Step } from '../schemas/compiled';
import { interpolateLocal } from '../schemas/interpolate';
import { passThrough, StepError, type BuildContext, type Frame } from './context';
import { runList, servicesOf, weightOf, type ListSource } from './fanout';
import { runPool } from './pool';

export type RunIteration = (step: Step, frame: Frame) => Promise<boolean>;

/**
 * `across`: runs the step once per combination of the vars' values (the cartesian
 * product, nested in the order the vars are listed, each var with its own
 * max_in_flight). Each iteration has its own scope holding ((.:var)) and its own
 * step ids (`<id>.across.<i>.<j>`), so iterations never see each other's artifacts.
 */
export function withAcross(ctx: BuildContext, step: Step, frame: Frame, run: RunIteration): Promise<boolean> {
  if (!step.across) return passThrough(ctx, () => run(step, frame));
  return runAcross(ctx, step, step.across, frame, run);
}

async function runAcross(
  ctx: BuildContext,
  step: Step,
  across: NonNullable<Step['across']>,
  frame: Frame,
  run: RunIteration,
): Promise<boolean> {
  ctx.status.start(step.id);
  try {
    // Resolved inside the try: a ((.:list)) that is missing or not a list errors the
    // step in the status tree too, instead of leaving it pending in a finished build.
    const values = across.vars.map((v) => valuesOf(v, frame));
    const ok = await acrossLevels(ctx, step, frame, values, run).level(0, [], []);
    ctx.status.finish(step.id, ok ? 'succeeded' : 'failed');
    return ok;
  } catch (err) {
    ctx.status.finish(step.id, err instanceof StepError ? 'errored' : 'aborted');
    throw err;
  }
}

/**
 * The levels of an across, one per var, each a pool of its values. A level with many
 * iterations below it runs in child workflows (runList); such a child (a part) runs its
 * slice of level `slice.depth` with `direct`, indices counted from `slice.offset`.
 */
export function acrossLevels(
  ctx: BuildContext,
  step: Step,
  frame: Frame,
  values: unknown[][],
  run: RunIteration,
  slice?: { depth: number; offset: number },
) {
  const across = step.across!;
  const template: Step = { ...step, across: undefined, hooks: undefined };
  const level = async (depth: number, bindings: unknown[], indices: number[], direct?: { limit: number }): Promise<boolean> => {
    if (depth === across.vars.length) {
      const id = `${step.id}.across.${indices.join('.')}`;
      const scope = frame.scope.child();
      // Concourse binds across vars unredacted (AddLocalVar(name, value, false)), also over a load_var of the same name.
      across.vars.forEach((v, i) => scope.setLocal(v.var, bindings[i], { reveal: true }));
      const iteration = renameIds(template, step.id, id);
      ctx.status.register(iteration, step.id, iteration.id, scope.allLocals());
      return run(iteration, { ...frame, scope, parent: step.id });
    }
    const v = across.vars[depth];
    const list = values[depth];
    const offset = slice?.depth === depth ? slice.offset : 0;
    const opts = { limit: direct?.limit ?? (v.maxInFlight === 'all' ? list.length : v.maxInFlight), failFast: across.failFast };
    const runItem = (i: number) => level(depth + 1, [...bindings, list[i]], [...indices, offset + i]);
    const onSkipped = (i: number) => skipAll(depth + 1, [...indices, offset + i]);
    if (direct) return runPool(ctx, { count: list.length, ...opts }, runItem, onSkipped);
    const below = values.slice(depth + 1).reduce((n, l) => n * l.length, 1);
    const source: ListSource = {
      parent: step.id,
      key: `${step.id}.across[${indices.join('.')}]`,
      weights: list.map(() => weightOf(template) * below),
      services: list.map(() => servicesOf(template) * below),
      slice: (from, to) => ({
        kind: 'across',
        // The values travel sliced in `values`: the step's own lists would be copied into every part.
        step: { ...step, hooks: undefined, across: { ...across, vars: across.vars.map((v) => ({ ...v, values: [] })) } },
        depth,
        bindings,
        indices,
        values: values.map((l, k) => (k === depth ? l.slice(from, to) : k > depth ? l : [])),
        offset: from,
      }),
    };
    return runList(ctx, frame, source, opts, runItem, onSkipped);
  };
  // Iterations fail_fast or an abort kept from starting are listed as skipped, as
  // in_parallel lists its unstarted steps, so the tree shows every combination.
  const skipAll = (depth: number, indices: number[]): void => {
    if (depth === across.vars.length) {
      const id = `${step.id}.across.${indices.join('.')}`;
      ctx.status.skip(renameIds(template, step.id, id), step.id);
      return;
    }
    values[depth].forEach((_, i) => skipAll(depth + 1, [...indices, i]));
  };
  return { level };
}

function valuesOf(v: AcrossVar, frame: Frame): unknown[] {
  if (Array.isArray(v.values)) return v.values;
  let resolved: unknown;
  try {
    resolved = interpolateLocal(v.values, frame.scope.allLocals());
  } catch (err) {
    throw new StepError(`across var ${v.var}: ${(err as Error).message}`);
  }
  if (!Array.isArray(resolved)) throw new StepError(`across var ${v.var}: values must be a list, got ${JSON.stringify(resolved)}`);
  return resolved;
}

/** Gives a step and all its descendants ids under a new prefix. */
function renameIds<T>(value: T, from: string, to: string): T {
  if (Array.isArray(value)) return value.map((v) => renameIds(v, from, to)) as T;
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === 'id' && typeof v === 'string' && (v === from || v.startsWith(`${from}.`))) out[k] = to + v.slice(from.length);
    else if (typeof v === 'object') out[k] = renameIds(v, from, to);
    else out[k] = v;
  }
  return out as T;
}
