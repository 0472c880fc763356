// ((var)) interpolation with Concourse's syntax. PURE: no node, zod or yaml
// imports, because the workflow bundle uses it to resolve local vars ((.:name)).

/** The var source of service addresses, ((.svc:db.address)), resolved when the step runs. */
export const SVC_SOURCE = '.svc';

/** A parsed `((source:path.field))` reference. */
export interface VarRef {
  /** var source name; "." for local vars set by load_var/across */
  source?: string;
  /** var name followed by the fields to descend into */
  path: string[];
  /** the text between the parentheses, trimmed: `source:name.field` */
  raw: string;
}

export type Lookup = (ref: VarRef) => { found: true; value: unknown } | { found: false };

// Names are made of letters, digits, _ - / . and a source's colon, as in Concourse's
// template regex, so shell arithmetic like $(($1 + $2)) in a script is left alone.
// Quoted segments may contain anything but a quote (("a.b".c)).
const REF_PATTERN = /\(\(\s*((?:"[^"]*"|[-/.:\w\p{L}])+)\s*\)\)/gu;
// The same, anchored: a literal rather than built from REF_PATTERN.source, because the
// workflow bundler rewrites \p{L} into a class that only parses with the `u` flag.
const WHOLE_REF_PATTERN = /^\(\(\s*((?:"[^"]*"|[-/.:\w\p{L}])+)\s*\)\)$/u;

/** Splits on dots outside double quotes, then unquotes each segment. */
function splitPath(text: string): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (const ch of text) {
    if (ch === '"') quoted = !quoted;
    else if (ch === '.' && !quoted) {
      parts.push(current.trim());
      current = '';
    } else current += ch;
  }
  parts.push(current.trim());
  return parts;
}

/** Parses the inside of `((...))` (with or without the parentheses). */
export function parseVarRef(text: string): VarRef {
  const raw = text
    .trim()
    .replace(/^\(\(\s*/, '')
    .replace(/\s*\)\)$/, '');
  // A colon before any quote separates the source, as Concourse's parseVarName.
  const colon = raw.indexOf(':');
  const quote = raw.indexOf('"');
  if (colon > 0 && (quote < 0 || colon < quote)) {
    const source = raw.slice(0, colon).trim();
    const rest = raw.slice(colon + 1);
    return { source, path: splitPath(rest), raw };
  }
  return { path: splitPath(raw), raw };
}

/** Every ref in a string, in order. */
export function findVarRefs(text: string): VarRef[] {
  return [...text.matchAll(REF_PATTERN)].map((m) => parseVarRef(m[1]));
}

/** How a value reads inside a longer string: objects as JSON, null as nothing. */
export function stringifyVar(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function interpolateString(text: string, lookup: Lookup, missing: VarRef[]): unknown {
  const whole = text.match(WHOLE_REF_PATTERN);
  if (whole) {
    // A scalar that is exactly one ref takes the var's value with its type.
    const ref = parseVarRef(whole[1]);
    const hit = lookup(ref);
    if (hit.found) return hit.value;
    missing.push(ref);
    return text;
  }
  return text.replace(REF_PATTERN, (match, inner: string) => {
    const ref = parseVarRef(inner);
    const hit = lookup(ref);
    if (hit.found) return stringifyVar(hit.value);
    missing.push(ref);
    return match;
  });
}

/** Deep interpolation of strings in objects and arrays; keys are left alone. */
export function interpolate(value: unknown, lookup: Lookup): { value: unknown; missing: VarRef[] } {
  const missing: VarRef[] = [];
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return interpolateString(v, lookup, missing);
    if (Array.isArray(v)) return v.map(walk);
    if (isPlainObject(v)) {
      const out: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(v)) out[k] = walk(item);
      return out;
    }
    return v;
  };
  return { value: walk(value), missing };
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Descends `fields` into a var's value; undefined when a field is absent. */
export function descend(value: unknown, fields: string[]): { found: true; value: unknown } | { found: false } {
  let current = value;
  for (const field of fields) {
    if (!isPlainObject(current) || !(field in current)) return { found: false };
    current = current[field];
  }
  return { found: true, value: current };
}

/** Looks a ref up in a map of vars: `a.b` is field b of var a, or a flat key "a.b". */
export function lookupIn(vars: Record<string, unknown>, ref: VarRef): { found: true; value: unknown } | { found: false } {
  const [name, ...fields] = ref.path;
  if (Object.prototype.hasOwnProperty.call(vars, name)) {
    const hit = descend(vars[name], fields);
    if (hit.found) return hit;
  }
  const flat = ref.path.join('.');
  if (fields.length > 0 && Object.prototype.hasOwnProperty.call(vars, flat)) return { found: true, value: vars[flat] };
  return { found: false };
}

const STEP_KINDS = new Set(['task', 'do', 'in_parallel', 'try', 'load_var', 'get', 'put', 'set_pipeline']);
// Parts of a compiled step that run later, possibly after load_vars that set
// the locals they use; they are interpolated when they run.
const DEFERRED_STEP_KEYS = new Set(['hooks', 'steps', 'step']);

// A whole-scalar local var may bring an object or a number where a task step
// holds env vars and args, which are strings: encode them as Concourse does.
function keepTaskStrings(step: Record<string, unknown>): Record<string, unknown> {
  const env = (m: unknown) => (isPlainObject(m) ? Object.fromEntries(Object.entries(m).map(([k, v]) => [k, stringifyVar(v)])) : m);
  const config = step.config;
  if (!isPlainObject(config)) return { ...step, params: env(step.params) };
  const run =
    isPlainObject(config.run) && Array.isArray(config.run.args) ? { ...config.run, args: config.run.args.map(stringifyVar) } : config.run;
  return { ...step, params: env(step.params), config: { ...config, params: env(config.params), run } };
}

/**
 * Resolves only local vars `((.:name.field))` from `locals`; other refs stay as
 * text. In a compiled step (an object with a step `kind` and an `id`), its hooks
 * and nested steps are left for when they run, and a task step's params and
 * args stay strings. Throws listing every missing one.
 */
export function interpolateLocal<T>(value: T, locals: Record<string, unknown>): T {
  const missing: VarRef[] = [];
  const lookup: Lookup = (ref) => (ref.source === '.' ? lookupIn(locals, ref) : { found: true, value: `((${ref.raw}))` });
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return interpolateString(v, lookup, missing);
    if (Array.isArray(v)) return v.map(walk);
    if (isPlainObject(v)) {
      const isStep = typeof v.kind === 'string' && STEP_KINDS.has(v.kind) && typeof v.id === 'string';
      const out: Record<string, unknown> = {};
      for (const [k, item] of Object.entries(v)) out[k] = isStep && DEFERRED_STEP_KEYS.has(k) ? item : walk(item);
      if (!isStep || v.kind !== 'task') return out;
      // Concourse interpolates across vars in mapping keys too: `input_mapping: {((.:name)): src}`.
      for (const key of ['inputMapping', 'outputMapping']) {
        const m = out[key];
        if (isPlainObject(m))
          out[key] = Object.fromEntries(Object.entries(m).map(([k, item]) => [stringifyVar(interpolateString(k, lookup, missing)), item]));
      }
      return keepTaskStrings(out);
    }
    return v;
  };
  const result = walk(value) as T;
  if (missing.length > 0) {
    const names = [...new Set(missing.map((r) => `((${r.raw}))`))].join(', ');
    throw new Error(`undefined local var${missing.length > 1 ? 's' : ''}: ${names}`);
  }
  return result;
}
