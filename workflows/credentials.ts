// What the workflow knows of credentials: only which var sources a plan names and which local
// vars hold load_var values to redact. Values from credential managers never come here: the
// step activities resolve them (activities/creds/).
import type { Step, VarSourceConfig } from '../schemas/compiled';
import { pipelineNameOf } from '../schemas/pipeline-api';
import type { BuildCredentials, Frame } from './context';

/** Absent when the plan has none of them, so a build without credentials sends its activities what it did before. */
export function buildCredentials(
  varSources: VarSourceConfig[] | undefined,
  secretLocals: string[],
  pipeline?: string,
): BuildCredentials | undefined {
  if (!varSources?.length && secretLocals.length === 0 && pipeline === undefined) return undefined;
  return {
    ...(varSources?.length ? { varSources } : {}),
    ...(secretLocals.length ? { secretLocals } : {}),
    ...(pipeline !== undefined ? { pipeline } : {}),
  };
}

/** The name credential managers look a build's vars up under (Concourse's pipeline: an instance's is its pipeline's name). */
export function credentialsPipeline(ctx: { plan: string; credentials?: BuildCredentials }): string {
  return ctx.credentials?.pipeline !== undefined ? pipelineNameOf(ctx.credentials.pipeline) : ctx.plan;
}

/** load_var names whose values are secrets (Concourse: every load_var unless `reveal: true`). */
export function secretLocalNames(step: Step): string[] {
  const names = new Set<string>();
  const walk = (s: Step | undefined): void => {
    if (!s) return;
    if (s.kind === 'load_var' && !s.reveal) names.add(s.var);
    if (s.kind === 'do' || s.kind === 'in_parallel') s.steps.forEach(walk);
    if (s.kind === 'try') walk(s.step);
    Object.values(s.hooks ?? {}).forEach(walk);
  };
  walk(step);
  return [...names];
}

/**
 * What of a load_var value Concourse redacts (vars/tracker.go): a string, and the strings in a
 * map, field by field; never a list's items, a number or a boolean. testflight's across.yml
 * loads a list with load_var and expects its items in the log.
 */
function tracked(value: unknown): unknown {
  if (typeof value === 'string') return value;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const fields = Object.values(value)
    .map(tracked)
    .filter((v) => v !== undefined);
  return fields.length > 0 ? fields : undefined;
}

/** The values in the frame's scope that the step's logs must not show. */
export function redactedValues(creds: BuildCredentials | undefined, frame: Frame): unknown[] | undefined {
  if (!creds?.secretLocals?.length) return undefined;
  const locals = frame.scope.allLocals();
  const values = creds.secretLocals
    .filter((n) => Object.prototype.hasOwnProperty.call(locals, n) && !frame.scope.isRevealed(n))
    .map((n) => tracked(locals[n]))
    .filter((v) => v !== undefined);
  return values.length > 0 ? values : undefined;
}
