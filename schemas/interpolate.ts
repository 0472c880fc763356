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

/** A var's value as Concourse writes a map key it became: YAML's scalars. */
function keyText(value: unknown): string | undefined {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return undefined;
}

function kindOf(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  // Only a fraction is refused, and a credential's value is never said.
  if (typeof value === 'number') return 'a number with a fraction';
  return typeof value === 'boolean' ? 'a boolean' : typeof value;
}

/** A map key with its ((vars)) filled in, the refs found nowhere (the key keeps them), or why it cannot be a key. */
export type KeyResult = { key: string; missing: VarRef[] } | { problem: string };

/**
 * A map key interpolated as Concourse's vars.Template does it (it walks keys as it walks
 * values): a key that is one ref becomes the var's value, as YAML writes a scalar (`1`, `true`,
 * `null`); a map or a list crashes Concourse (a Go map key must be hashable), an error here.
 * A ref inside a longer key takes a string or a whole number only, as inside any string there
 * ("cannot interpolate non-primitive value").
 */
export function interpolateKey(key: string, lookup: Lookup): KeyResult {
  const missing: VarRef[] = [];
  // Nearly every key: no regex for it (a pipeline may have 30,000).
  if (!key.includes('((')) return { key, missing };
  const whole = key.match(WHOLE_REF_PATTERN);
  if (whole) {
    const ref = parseVarRef(whole[1]);
    const hit = lookup(ref);
    if (!hit.found) return { key, missing: [ref] };
    const text = keyText(hit.value);
    if (text === undefined)
      return { problem: `the key \`${key}\` is ${kindOf(hit.value)}: a map key is a string, a number, a boolean or null` };
    return { key: text, missing };
  }
  let problem: string | undefined;
  const replaced = key.replace(REF_PATTERN, (match, inner: string) => {
    const ref = parseVarRef(inner);
    const hit = lookup(ref);
    if (!hit.found) {
      missing.push(ref);
      return match;
    }
    if (typeof hit.value === 'string' || Number.isInteger(hit.value)) return String(hit.value);
    problem ??= `var \`${ref.raw}\` in the key \`${key}\` is ${kindOf(hit.value)}: inside a longer key only a string or a whole number can go`;
    return match;
  });
  return problem === undefined ? { key: replaced, missing } : { problem };
}

/** The key a KeyResult gives, or the key as written when it cannot be one. */
export function keyName(written: string, result: KeyResult): string {
  return 'key' in result ? result.key : written;
}

/**
 * A map rebuilt from its entries under their interpolated keys (each `[key as written, its
 * KeyResult, value]`), colliding as in Concourse, which writes each entry under its new key
 * into the map it walks: an interpolated key wins over a key written as it is, in whichever
 * order Go's map gives them; two interpolated keys that become one would keep either by
 * chance, and are an error here. A key that cannot be one stays as written, reported.
 */
export function rekey(entries: [string, KeyResult, unknown][], report: (key: string, problem: string) => void): Record<string, unknown> {
  const out = new Map<string, unknown>();
  const interpolatedFrom = new Map<string, string>();
  for (const [written, result, value] of entries) {
    const key = keyName(written, result);
    if ('problem' in result) report(written, result.problem);
    if (key === written) {
      if (!interpolatedFrom.has(key)) out.set(key, value);
      continue;
    }
    const other = interpolatedFrom.get(key);
    if (other !== undefined) {
      report(written, `the keys \`${other}\` and \`${written}\` both become \`${key}\`: Concourse keeps one of them by chance`);
      continue;
    }
    interpolatedFrom.set(key, written);
    out.set(key, value);
  }
  // fromEntries, not assignment: a key `__proto__` stays a key.
  return Object.fromEntries(out);
}

/** Deep interpolation of strings in objects and arrays, map keys too (interpolateKey); `problems` are keys that cannot be. */
export function interpolate(value: unknown, lookup: Lookup): { value: unknown; missing: VarRef[]; problems: string[] } {
  const missing: VarRef[] = [];
  const problems: string[] = [];
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return interpolateString(v, lookup, missing);
    if (Array.isArray(v)) return v.map(walk);
    if (isPlainObject(v)) return rekey(entriesOf(v, lookup, missing, walk), (_, problem) => problems.push(problem));
    return v;
  };
  return { value: walk(value), missing, problems };
}

/** `v`'s entries with their keys interpolated (missing refs collected) and their values walked. */
function entriesOf(
  v: Record<string, unknown>,
  lookup: Lookup,
  missing: VarRef[],
  walk: (item: unknown, key: string) => unknown,
): [string, KeyResult, unknown][] {
  return Object.entries(v).map(([k, item]) => {
    const key = interpolateKey(k, lookup);
    if ('missing' in key) missing.push(...key.missing);
    return [k, key, walk(item, k)];
  });
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
  const problems: string[] = [];
  const lookup: Lookup = (ref) => (ref.source === '.' ? lookupIn(locals, ref) : { found: true, value: `((${ref.raw}))` });
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return interpolateString(v, lookup, missing);
    if (Array.isArray(v)) return v.map(walk);
    if (isPlainObject(v)) {
      const isStep = typeof v.kind === 'string' && STEP_KINDS.has(v.kind) && typeof v.id === 'string';
      // Keys too, as Concourse's: `input_mapping: {((.:name)): src}` in an across.
      const entries = entriesOf(v, lookup, missing, (item, k) => (isStep && DEFERRED_STEP_KEYS.has(k) ? item : walk(item)));
      const out = rekey(entries, (_, problem) => problems.push(problem));
      return isStep && v.kind === 'task' ? keepTaskStrings(out) : out;
    }
    return v;
  };
  const result = walk(value) as T;
  if (missing.length > 0 || problems.length > 0) {
    const names = [...new Set(missing.map((r) => `((${r.raw}))`))].join(', ');
    const undefinedVars = missing.length > 0 ? [`undefined local var${missing.length > 1 ? 's' : ''}: ${names}`] : [];
    throw new Error([...undefinedVars, ...problems].join('; '));
  }
  return result;
}
