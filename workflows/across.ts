import type { AcrossVar, Step } from '../schemas/compiled';
import { interpolateLocal } from '../schemas/interpolate';
import { StepError, type BuildContext, type Frame } from './context';
import { runPool } from './pool';

type RunIteration = (step: Step, frame: Frame) => Promise<boolean>;

/**
 * `across`: runs the step once per combination of the vars' values (the cartesian
 * product, nested in the order the vars are listed, each var with its own
 * max_in_flight). Each iteration has its own scope holding ((.:var)) and its own
 * step ids (`<id>.across.<i>.<j>`), so iterations never see each other's artifacts.
 */
export async function withAcross(ctx: BuildContext, step: Step, frame: Frame, run: RunIteration): Promise<boolean> {
  const across = step.across;
  if (!across) return run(step, frame);
  const template: Step = { ...step, across: undefined, hooks: undefined };
  ctx.status.start(step.id);
  // Resolved inside the try below: a ((.:list)) that is missing or not a list errors the
  // step in the status tree too, instead of leaving it pending in a finished build.
  let values: unknown[][] = [];

  const level = async (depth: number, bindings: unknown[], indices: number[]): Promise<boolean> => {
    if (depth === across.vars.length) {
      const id = `${step.id}.across.${indices.join('.')}`;
      const scope = frame.scope.child();
      across.vars.forEach((v, i) => scope.setLocal(v.var, bindings[i]));
      const iteration = renameIds(template, step.id, id);
      ctx.status.register(iteration, step.id, iteration.id, scope.allLocals());
      return run(iteration, { ...frame, scope, parent: step.id });
    }
    const v = across.vars[depth];
    const list = values[depth];
    return runPool(
      ctx,
      { count: list.length, limit: v.maxInFlight === 'all' ? list.length : v.maxInFlight, failFast: across.failFast },
      (i) => level(depth + 1, [...bindings, list[i]], [...indices, i]),
      (i) => skipAll(depth + 1, [...indices, i]),
    );
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

  try {
    values = across.vars.map((v) => valuesOf(v, frame));
    const ok = await level(0, [], []);
    ctx.status.finish(step.id, ok ? 'succeeded' : 'failed');
    return ok;
  } catch (err) {
    ctx.status.finish(step.id, err instanceof StepError ? 'errored' : 'aborted');
    throw err;
  }
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
