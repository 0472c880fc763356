// Static vars: `-v name=value` and `-l vars.yml` from the caller, interpolated
// into the plan at compile time. Local vars ((.:name)) are left for run time.
import { readFileSync } from 'node:fs';
import { decodeUtf8 } from './checks';
import { Source, type Path } from './errors';
import { interpolate, isPlainObject, lookupIn, parseVarRef, SVC_SOURCE, type VarRef } from './interpolate';

/**
 * Parses `-v` values ("name=value"). Values stay strings, as fly's `-v`; a
 * dotted name sets a field (`a.b=c` gives {a: {b: "c"}}), as fly does.
 */
export function parseVarFlags(flags: string[]): Record<string, unknown> {
  const vars: Record<string, unknown> = {};
  for (const flag of flags) {
    const eq = flag.indexOf('=');
    if (eq <= 0) throw new Error(`-v needs name=value, got \`${flag}\``);
    const ref = parseVarRef(flag.slice(0, eq));
    if (ref.source !== undefined || ref.path.some((p) => p === '')) throw new Error(`-v needs name=value, got \`${flag}\``);
    let target = vars;
    for (const seg of ref.path.slice(0, -1)) {
      if (!isPlainObject(target[seg])) target[seg] = {};
      target = target[seg] as Record<string, unknown>;
    }
    target[ref.path[ref.path.length - 1]] = flag.slice(eq + 1);
  }
  return vars;
}

/** Reads `-l` files (YAML maps); later files override earlier ones. Throws PlanError. */
export function loadVarFiles(paths: string[]): Record<string, unknown> {
  const vars: Record<string, unknown> = {};
  for (const file of paths) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (e) {
      throw new Error(`cannot read vars file ${file}: ${(e as Error).message}`, { cause: e });
    }
    const src = new Source(file, decodeUtf8(bytes, file));
    src.check();
    if (src.value === null || src.value === undefined) continue;
    if (!isPlainObject(src.value)) src.add([], 'a vars file must be a map of var names to values');
    src.check();
    Object.assign(vars, src.value);
  }
  return vars;
}

function missingMessage(ref: VarRef): string {
  if (ref.source !== undefined) {
    return `undefined var \`${ref.raw}\`: var sources (\`${ref.source}:\`) are not supported yet; pass the value with -v or -l`;
  }
  return `undefined var \`${ref.raw}\`; pass it with -v ${ref.path[0]}=VALUE or in a -l vars file`;
}

/**
 * Replaces static ((vars)) in `value` (found at `base` in `src`), reporting each
 * undefined one at the string that holds it. Local ((.:vars)) stay as text.
 */
export function interpolateStatic(src: Source, value: unknown, base: Path, vars: Record<string, unknown>): unknown {
  const walk = (v: unknown, path: Path): unknown => {
    if (typeof v === 'string') {
      const r = interpolate(v, (ref) =>
        // Local vars and service addresses are known only when the step runs.
        ref.source === '.' || ref.source === SVC_SOURCE
          ? { found: true, value: `((${ref.raw}))` }
          : ref.source === undefined
            ? lookupIn(vars, ref)
            : { found: false },
      );
      for (const ref of r.missing) src.add(path, missingMessage(ref));
      if (r.missing.length > 0) src.suppress(path);
      return r.value;
    }
    if (Array.isArray(v)) return v.map((item, i) => walk(item, [...path, i]));
    if (isPlainObject(v)) {
      const out: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(v)) out[k] = walk(item, [...path, k]);
      return out;
    }
    return v;
  };
  return walk(value, base);
}
