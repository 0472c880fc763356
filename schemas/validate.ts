// zod does the shape checks; this maps its issues to YAML positions and to
// messages a user understands, with a "did you mean" for unknown keys.
import { z } from 'zod';
import { formatPath, type Path, type Source } from './errors';
import { isPlainObject } from './interpolate';
import { nearest } from './units';

/** Numbers and booleans that arrived as strings from `-v name=value` are read as such. */
export const int = (min: number, what: string) =>
  z.preprocess(
    (v) => (typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v),
    z.number().int().min(min, `${what} must be >= ${min}`),
  );

export const bool = z.preprocess((v) => (v === 'true' ? true : v === 'false' ? false : v), z.boolean());

/** A map whose values become env vars: strings stay, objects are JSON-encoded, null is "". */
export const envMap = z.record(z.string(), z.unknown()).transform((m) => {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m)) {
    out[k] = v === null || v === undefined ? '' : typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
  }
  return out;
});

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  array: 'a list',
  object: 'a map',
  record: 'a map',
};

export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (isPlainObject(v)) return 'a map';
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  return `${typeof v} ${String(v)}`;
}

type Def = {
  type: string;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  innerType?: z.ZodType;
  in?: z.ZodType;
  out?: z.ZodType;
  valueType?: z.ZodType;
};

function defOf(schema: z.ZodType): Def {
  return (schema as unknown as { _zod: { def: Def } })._zod.def;
}

/** The object schema's keys at `path` inside `schema`, for suggestions. */
function keysAt(schema: z.ZodType, path: PropertyKey[]): string[] {
  let current: z.ZodType | undefined = schema;
  const unwrap = () => {
    for (let def = current && defOf(current); def; def = current && defOf(current)) {
      if (def.type === 'pipe') current = def.in && defOf(def.in).type === 'transform' ? def.out : def.in;
      else if (def.innerType) current = def.innerType;
      else return;
    }
  };
  for (const seg of path) {
    unwrap();
    if (!current) return [];
    const def = defOf(current);
    current = def.type === 'object' ? def.shape?.[String(seg)] : def.type === 'array' ? def.element : def.valueType;
  }
  unwrap();
  return current && defOf(current).type === 'object' ? Object.keys(defOf(current).shape ?? {}) : [];
}

function valueAt(value: unknown, path: Path): unknown {
  let current = value;
  for (const seg of path) {
    if (Array.isArray(current) && typeof seg === 'number') current = current[seg];
    else if (isPlainObject(current)) current = current[String(seg)];
    else return undefined;
  }
  return current;
}

function unknownKeyMessage(key: string, where: string, known: string[]): string {
  const hint = nearest(key, known);
  return `unknown key \`${key}\` in ${where}` + (hint ? `; did you mean \`${hint}\`?` : `; expected one of ${known.join(', ')}`);
}

/**
 * Parses `value` (found at `base` in the file) with `schema`; reports every
 * issue to `src` and returns undefined when there is any. `where` names the
 * object for unknown-key messages ("task step", "task config").
 */
export function validate<S extends z.ZodType>(src: Source, schema: S, value: unknown, base: Path, where: string): z.output<S> | undefined {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  for (const issue of result.error.issues) {
    const rel = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
    const path = [...base, ...rel];
    if (issue.code === 'unrecognized_keys') {
      const last = rel.filter((p): p is string => typeof p === 'string').pop();
      const label = rel.length === 0 ? where : `\`${last ?? formatPath(rel)}\``;
      const known = keysAt(schema, rel);
      for (const key of issue.keys) src.add([...path, key], unknownKeyMessage(key, label, known), { key: true });
      continue;
    }
    const actual = valueAt(value, rel);
    if (issue.code === 'invalid_type') {
      const expected = EXPECTED[issue.expected] ?? issue.expected;
      if (actual === undefined) src.add(path, `missing required key \`${String(rel[rel.length - 1] ?? '')}\` (${expected})`);
      else src.add(path, `expected ${expected}, got ${describeValue(actual)}`);
    } else if (issue.code === 'invalid_value') {
      src.add(path, `expected one of ${issue.values.map(String).join(', ')}, got ${describeValue(actual)}`);
    } else if (issue.code === 'too_small' && issue.message.startsWith('Too small:') && Number(issue.minimum) === 1) {
      // zod's own words ("Too small: expected string to have >=1 characters") for an empty value.
      src.add(path, issue.origin === 'string' ? 'must not be empty' : issue.origin === 'array' ? 'needs at least one item' : issue.message);
    } else {
      src.add(path, issue.message);
    }
  }
  return undefined;
}
