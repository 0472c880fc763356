// Pipeline instances (Concourse's instanced pipelines): a pipeline is a name plus optional
// instance vars, written `NAME/k:v,k2:v2` on the command line. The parser and the printer
// are ports of fly's and atc's (fly/commands/internal/flaghelpers/instance_vars_flag.go,
// job_flag.go, resource_flag.go; atc/pipeline.go; vars/variables.go, vars/static_vars.go), so
// a ref copied from fly means the same pipeline here, and refs print in Concourse's canonical
// form (keys sorted, values quoted only when they must be).
import { createHash } from 'node:crypto';
import YAML from 'yaml';
import { isPlainObject } from './interpolate';

export type InstanceVars = Record<string, unknown>;

/** A pipeline as a user names it: `name` alone, or an instance of `name`. */
export interface PipelineRef {
  name: string;
  instanceVars?: InstanceVars;
}

/** Concourse's vars.Reference: a var name with its dotted fields, quotes already removed. */
interface VarPath {
  path: string;
  fields: string[];
}

export const INSTANCE_VARS_FORMAT = 'instance vars should be formatted as <key1:value1>(,<key2:value2>)';

// fly parses values with sigs.k8s.io/yaml (YAML 1.1: `yes` and `on` are booleans, `0755` octal),
// which leaves timestamps and `1:30` as strings.
const FLY_YAML = {
  version: '1.1',
  customTags: (tags: YAML.Tags) =>
    tags.filter((t) =>
      typeof t === 'string'
        ? !['timestamp', 'intTime', 'floatTime'].includes(t)
        : t.tag !== 'tag:yaml.org,2002:timestamp' && t.format !== 'TIME',
    ),
} as const;

/** A YAML value as fly reads one (`-i name=YAML`, a ref's `k:YAML`). */
export function parseFlyYaml(text: string): unknown {
  return YAML.parse(text, FLY_YAML) as unknown;
}

/** Sets a key on a map of vars without ever touching a prototype (`__proto__` is a key like any other). */
function put(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

const own = (o: Record<string, unknown>, k: string) => Object.prototype.hasOwnProperty.call(o, k);

/** The index of the first `stop` character outside quotes (each of `quotes` opens a quote its twin closes), or -1. */
function findUnquoted(s: string, quotes: string, stop: (c: string) => boolean): number {
  let quote = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote === '') {
      if (stop(c)) return i;
      if (quotes.includes(c)) quote = c;
    } else if (c === quote) quote = '';
  }
  return -1;
}

/** fly's nextOccurrenceOfOutsideOfYAML: `r` outside a YAML flow map or list. */
function outsideOfYaml(r: string): (c: string) => boolean {
  let braces = 0;
  let brackets = 0;
  return (c) => {
    if (c === r) return braces === 0 && brackets === 0;
    if (c === '{') braces++;
    else if (c === '}') braces--;
    else if (c === '[') brackets++;
    else if (c === ']') brackets--;
    return false;
  };
}

/** vars.ParseReference without a source: `a."b.c".d` is a, [b.c, d]. */
function parseVarPath(name: string): VarPath {
  let input = name;
  const colon = findUnquoted(input, '"', (c) => c === ':');
  if (colon >= 0) {
    if (input.slice(0, colon).includes('"')) throw new Error(`invalid var '${name}': source must not be quoted`);
    input = input.slice(colon + 1);
  }
  const fields: string[] = [];
  for (;;) {
    const dot = findUnquoted(input, '"', (c) => c === '.');
    const field = (dot >= 0 ? input.slice(0, dot) : input).trim().replace(/"/g, '');
    if (field === '') throw new Error(`invalid var '${name}': empty field`);
    fields.push(field);
    if (dot < 0) break;
    input = input.slice(dot + 1);
  }
  return { path: fields[0], fields: fields.slice(1) };
}

function construct(fields: string[], value: unknown): unknown {
  let v = value;
  for (let i = fields.length - 1; i >= 0; i--) {
    const m: Record<string, unknown> = {};
    put(m, fields[i], v);
    v = m;
  }
  return v;
}

/** vars' KVPairs.Expand: later pairs win, dotted fields build nested maps. */
function expand(pairs: { ref: VarPath; value: unknown }[]): InstanceVars {
  return expandOnto({}, pairs);
}

function expandOnto(out: Record<string, unknown>, pairs: { ref: VarPath; value: unknown }[]): Record<string, unknown> {
  const upsert = (into: Record<string, unknown>, path: string, fields: string[], value: unknown): void => {
    const node = own(into, path) ? into[path] : undefined;
    if (!own(into, path) || !isPlainObject(node)) return put(into, path, construct(fields, value));
    if (fields.length === 0) return put(into, path, value);
    upsert(node, fields[0], fields.slice(1), value);
  };
  for (const { ref, value } of pairs) upsert(out, ref.path, ref.fields, value);
  return out;
}

/** fly's unmarshalInstanceVars: `k:v,k2.sub:v2` with YAML values, quoted keys and values, and commas inside YAML flow collections. */
export function parseInstanceVars(text: string): InstanceVars {
  const pairs: { ref: VarPath; value: unknown }[] = [];
  let s = text;
  for (;;) {
    const colon = findUnquoted(s, '"', (c) => c === ':');
    if (colon < 0) break;
    const rawKey = s.slice(0, colon);
    const ref = parseVarPath(rawKey);
    s = s.slice(colon + 1);
    const comma = findUnquoted(s, `"'`, outsideOfYaml(','));
    const rawValue = comma >= 0 ? s.slice(0, comma) : s;
    if (comma >= 0) s = s.slice(comma + 1);
    let value: unknown;
    try {
      value = parseFlyYaml(rawValue) ?? null;
    } catch (err) {
      throw new Error(`invalid value for key '${rawKey}': ${(err as Error).message.split('\n')[0]}`, { cause: err });
    }
    pairs.push({ ref, value });
    if (comma < 0) break;
  }
  if (pairs.length === 0) throw new Error(INSTANCE_VARS_FORMAT);
  return expand(pairs);
}

/** fly's PipelineFlag: `NAME` or `NAME/k:v,...`. */
export function parsePipelineRef(value: string): PipelineRef {
  const slash = value.indexOf('/');
  if (slash < 0) return { name: value };
  return { name: value.slice(0, slash), instanceVars: parseInstanceVars(value.slice(slash + 1)) };
}

/** fly's JobFlag and ResourceFlag: `PIPELINE/NAME` or `PIPELINE/k:v,.../NAME` (a value may hold `/`: the name is after the last one). */
export function parsePipelineChildRef(value: string, what: 'job' | 'resource'): { pipeline: PipelineRef; name: string } {
  const last = value.lastIndexOf('/');
  const name = last < 0 ? '' : value.slice(last + 1);
  if (name === '') throw new Error(`argument format should be <pipeline>/<${what}>`);
  const head = value.slice(0, last);
  const slash = head.indexOf('/');
  if (slash < 0) return { pipeline: { name: head }, name };
  return { pipeline: { name: head.slice(0, slash), instanceVars: parseInstanceVars(head.slice(slash + 1)) }, name };
}

/** `-i name=YAML` of fly's set-pipeline (YAMLVariablePairFlag), expanded as fly does. */
export function parseInstanceVarFlags(flags: string[]): InstanceVars | undefined {
  if (flags.length === 0) return undefined;
  return expand(
    flags.map((flag) => {
      const eq = flag.indexOf('=');
      if (eq < 0) throw new Error(`invalid variable pair '${flag}' (must be name=value)`);
      let value: unknown;
      try {
        value = parseFlyYaml(flag.slice(eq + 1)) ?? null;
      } catch (err) {
        throw new Error(`-i ${flag}: the value is not valid YAML: ${(err as Error).message.split('\n')[0]}`, { cause: err });
      }
      return { ref: parseVarPath(flag.slice(0, eq)), value };
    }),
  );
}

/** vars.Reference's String: a segment holding `,.:/ ` or a space is quoted. */
function pathString(ref: VarPath): string {
  return [ref.path, ...ref.fields].map((seg) => (/[,.:/ ]/.test(seg) ? JSON.stringify(seg) : seg)).join('.');
}

/** StaticVariables.Flatten: one pair per leaf (an empty map has none). */
function flatten(vars: InstanceVars): { ref: VarPath; value: unknown }[] {
  const out: { ref: VarPath; value: unknown }[] = [];
  const walk = (path: string, fields: string[], value: unknown) => {
    if (isPlainObject(value)) for (const [k, v] of Object.entries(value)) walk(path, [...fields, k], v);
    else out.push({ ref: { path, fields }, value });
  };
  for (const [k, v] of Object.entries(vars)) walk(k, [], v);
  return out;
}

/** Go's json.Marshal: map keys sorted, `<`, `>`, `&`, U+2028 and U+2029 escaped. */
export function goJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(goJson).join(',')}]`;
  if (isPlainObject(value))
    return `{${Object.keys(value)
      .sort(byteOrder)
      .map((k) => `${goJson(k)}:${goJson(value[k])}`)
      .join(',')}}`;
  if (value === undefined) return 'null';
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Go's string order: by UTF-8 bytes. */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** atc's instanceVarValueRequiresQuoting: a string that would read back as something else, or holds `,: /`. */
function requiresQuoting(v: unknown): boolean {
  if (typeof v !== 'string') return false;
  let parsed: unknown;
  try {
    parsed = parseFlyYaml(v);
  } catch {
    return true;
  }
  return typeof parsed !== 'string' || /[,: /]/.test(v);
}

/** atc's InstanceVars.String: `k:v` pairs of the leaves, sorted by key, joined by `,`. */
export function formatInstanceVars(vars: InstanceVars): string {
  return flatten(vars)
    .map((p) => ({ key: pathString(p.ref), value: p.value }))
    .sort((a, b) => byteOrder(a.key, b.key))
    .map(({ key, value }) => {
      const json = goJson(value);
      return `${key}:${requiresQuoting(value) ? json : json.replace(/^"/, '').replace(/"$/, '')}`;
    })
    .join(',');
}

/** atc's PipelineRef.String: `NAME`, or `NAME/k:v,...` for an instance. */
export function formatPipelineRef(ref: PipelineRef): string {
  return ref.instanceVars && Object.keys(ref.instanceVars).length > 0 ? `${ref.name}/${formatInstanceVars(ref.instanceVars)}` : ref.name;
}

/**
 * The pipeline's identity in workflow ids (`pipeline-KEY`, `build-KEY:JOB:N`), search attributes,
 * NATS subjects, cache directories and check leases: its name for a pipeline without instance
 * vars, so the ids of pipelines set before instances existed stay as they were; for an instance
 * `NAME+SLUG-HASH`, where SLUG is a readable part of its vars (letters, digits and `-`) and HASH
 * 16 hex digits of the SHA-256 of its vars as JSON with sorted keys. A plain name never holds
 * `+` (NAME_PATTERN), so no pipeline's key is another's, whatever it is named; the key fits a
 * NATS subject token, a path segment and a Temporal workflow id, and its length is bounded.
 */
export function pipelineKey(ref: PipelineRef): string {
  if (!ref.instanceVars || Object.keys(ref.instanceVars).length === 0) return ref.name;
  const slug = formatInstanceVars(ref.instanceVars)
    .replace(/[^A-Za-z0-9]+/g, '-')
    .slice(0, 40)
    .replace(/^-+|-+$/g, '');
  const hash = createHash('sha256').update(goJson(ref.instanceVars)).digest('hex').slice(0, 16);
  return `${ref.name}+${slug ? `${slug}-` : ''}${hash}`;
}

/** The vars a file is set with: `vars` with each leaf of `instanceVars` set over them (fly's set-pipeline adds them after -v and -y). */
export function withInstanceVars(vars: Record<string, unknown>, instanceVars: InstanceVars | undefined): Record<string, unknown> {
  if (!instanceVars) return vars;
  return expandOnto(structuredClone(vars), flatten(instanceVars));
}
