// Errors a user sees: every problem of a file at once, each with FILE:LINE:COL,
// the YAML path of the offending node and what was expected.
import {
  Composer,
  type CST,
  Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  Lexer,
  LineCounter,
  Parser,
  visit,
  YAMLParseError,
  type Node,
} from 'yaml';

export interface PlanIssue {
  file: string;
  line: number;
  column: number;
  /** YAML path like `plan[2].in_parallel.steps[0].task`; "" for the document */
  path: string;
  message: string;
}

export class PlanError extends Error {
  readonly issues: PlanIssue[];
  constructor(issues: PlanIssue[]) {
    super(issues.map(formatIssue).join('\n'));
    this.name = 'PlanError';
    this.issues = issues;
  }
}

export function formatIssue(i: PlanIssue): string {
  return `${i.file}:${i.line}:${i.column}: ${i.path ? `${i.path}: ` : ''}${i.message}`;
}

export type Path = (string | number)[];

export function formatPath(path: Path): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out === '' ? seg : `.${seg}`;
  return out;
}

/** How far a file's aliases may expand (the yaml library's maxAliasCount, which counts nested aliases). */
const MAX_ALIAS_EXPANSION = 10_000;

/** How a file Source has accepted is read again (merge keys resolved, aliases as bounded). */
export const PLAN_YAML_OPTIONS = { merge: true, maxAliasCount: MAX_ALIAS_EXPANSION } as const;
/**
 * The same, for a text a Source has parsed without issues (a pipeline as set): its keys were
 * found unique in one pass, which the library would do again comparing every pair of keys
 * (8 s more for `validate-pipeline --output` of a map of 30,000 keys).
 */
export const ACCEPTED_YAML_OPTIONS = { ...PLAN_YAML_OPTIONS, uniqueKeys: false } as const;

/**
 * The largest YAML file read (plan, pipeline, task, vars): twice Temporal's 2 MB payload, which
 * a plan must fit in once compiled, leaves room for comments and anchors. Larger files cost the
 * parser seconds and gigabytes before anything could be said about them.
 */
export const MAX_YAML_BYTES = 4 * 1024 * 1024;
/**
 * The most values (scalars and collections, as written) a YAML file may hold: a file of
 * 200,000 values is some 3 MB of ordinary YAML, and the parser's time and memory grow faster
 * than its values, so a file of millions of one-character items is refused before it is parsed.
 */
export const MAX_YAML_NODES = 200_000;
/**
 * How deeply maps and lists may nest. A plan needs far fewer levels (a step id is at most 255
 * bytes, some 50 nested steps); the YAML library and every later walk recurse, and a few
 * hundred levels more exhaust the stack ("Maximum call stack size exceeded").
 */
export const MAX_YAML_DEPTH = 256;

// YAML 1.2's printable characters (c-printable): the C0 controls but tab, LF and CR, DEL, the
// C1 controls but NEL, and U+FFFE/U+FFFF are not allowed in a file, as Concourse's YAML library
// refuses them ("control characters are not allowed"). Escapes in double quotes stay allowed.
// eslint-disable-next-line no-control-regex
const NOT_PRINTABLE = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ufffe\uffff]/;

/** A parsed YAML file that can turn a path into a position. */
export class Source {
  readonly issues: PlanIssue[] = [];
  readonly value: unknown;
  private readonly doc: Document;
  private readonly lines = new LineCounter();
  // Paths whose value holds an undefined var: any other complaint there is noise.
  private readonly suppressed: string[] = [];

  constructor(
    readonly file: string,
    text: string,
  ) {
    // Checked before the parser, whose time, memory and stack grow with what is refused here.
    const early = textProblem(file, text);
    const tokens = early ? [] : [...new Parser(this.lines.addNewLine).parse(text)];
    const deep = early ? undefined : tooDeep(tokens);
    if (early || deep !== undefined) {
      const [line, column] = early ? [early.line, early.column] : this.position(deep!);
      const message =
        early?.message ??
        `invalid YAML: maps and lists nest more than ${MAX_YAML_DEPTH} levels deep here; a plan needs far fewer (a step id is at most 255 bytes): flatten the file`;
      this.issues.push({ file, line, column, path: '', message });
      this.doc = new Document(null);
      this.value = undefined;
      return;
    }
    this.doc = composeOne(tokens, text.length);
    for (const e of [...this.doc.errors]) {
      const [line, column] = this.position(e.pos[0]);
      this.issues.push({ file, line, column, path: '', message: `invalid YAML: ${firstLine(e.message)}` });
    }
    const bad = this.issues.length === 0 ? this.badPair() : undefined;
    if (bad) this.issues.push(bad);
    this.value = this.issues.length === 0 ? this.toJS() : undefined;
  }

  /**
   * A Source over the same parsed file with issues of its own: a pipeline's jobs are each
   * compiled from one parse of its file (parsing it again for every job took 38 s for 500 jobs).
   * The value is shared: compiling reads it and never changes it.
   */
  fork(): Source {
    const fork = Object.create(Source.prototype) as Source;
    return Object.assign(fork, { file: this.file, value: this.value, doc: this.doc, lines: this.lines, issues: [], suppressed: [] });
  }

  /**
   * The document's value, its aliases bounded: each use of an anchor counts the aliases inside
   * it, so a pipeline may use `*task-config` thousands of times, but a "billion laughs" (anchors
   * of anchors, 10 times each) is refused at once instead of every later walk of the plan
   * visiting its 10^9 leaves.
   */
  private toJS(): unknown {
    try {
      return this.doc.toJS({ maxAliasCount: MAX_ALIAS_EXPANSION });
    } catch (err) {
      if (!(err instanceof ReferenceError)) throw err;
      this.issues.push({
        file: this.file,
        line: 1,
        column: 1,
        path: '',
        message: `invalid YAML: its aliases expand to more than ${MAX_ALIAS_EXPANSION} copies (anchors of anchors, a YAML bomb?)`,
      });
      return undefined;
    }
  }

  /**
   * The first pair the yaml library would turn into a JS object badly, at its place: a map or a
   * list as a key (stringified, with a warning on stderr), a key written twice in one map (the
   * later would silently replace the earlier; `1` and `"1"` are one key in JS), or a merge key
   * (`<<`) whose value is not a map or an alias of one (refused without a place). A `!!binary`
   * value becomes its text, as Concourse's YAML library decodes it.
   */
  private badPair(): PlanIssue | undefined {
    let found: PlanIssue | undefined;
    const at = (offset: number | undefined, message: string) => {
      const [line, column] = this.position(offset ?? 0);
      found = { file: this.file, line, column, path: '', message: `invalid YAML: ${message}` };
      return visit.BREAK;
    };
    const resolved = (node: unknown) => (isAlias(node) ? node.resolve(this.doc) : node);
    visit(this.doc, {
      // An alias inside the node its anchor names (`a: &a [*a]`) would expand forever.
      Alias: (_, node, path) => {
        const target = node.resolve(this.doc);
        return target && path.includes(target)
          ? at(
              node.range?.[0],
              `the alias \`*${node.source}\` is inside the value its anchor \`&${node.source}\` names, so it would contain itself; use the anchor after its value ends`,
            )
          : undefined;
      },
      Scalar: (_, node) => {
        if (!(node.value instanceof Uint8Array)) return undefined;
        try {
          node.value = new TextDecoder('utf-8', { fatal: true }).decode(node.value);
          return undefined;
        } catch {
          return at(
            node.range?.[0],
            'this `!!binary` value is not UTF-8 text, and a plan holds only text: put binary data in a file of an input',
          );
        }
      },
      Map: (_, map) => {
        const seen = new Map<string, number | undefined>();
        for (const pair of map.items) {
          const key = resolved(pair.key);
          if (!isScalar(key) || (isScalar(pair.key) && pair.key.source === '<<')) continue;
          const name = key.value === null || key.value === undefined ? '' : String(key.value);
          const offset = (pair.key as Node | null)?.range?.[0];
          if (seen.has(name)) {
            const first = seen.get(name);
            const where = first === undefined ? '' : ` (first at line ${this.position(first)[0]})`;
            return at(offset, `map keys must be unique: \`${name}\` is set twice in this map${where}; keep one`);
          }
          seen.set(name, offset);
        }
        return undefined;
      },
      Pair: (_, pair) => {
        const key = resolved(pair.key);
        if (key != null && !isScalar(key)) return at((pair.key as Node).range?.[0], 'a key is a plain value, not a map or a list');
        if (!isScalar(pair.key) || pair.key.source !== '<<') return undefined;
        const value = resolved(pair.value);
        const sources = isSeq(value) ? value.items.map(resolved) : [value];
        return sources.every((v) => isMap(v))
          ? undefined
          : at(pair.key.range?.[0], '`<<` merges a map or an alias of one (or a list of them)');
      },
    });
    return found;
  }

  private position(offset: number): [number, number] {
    const { line, col } = this.lines.linePos(offset);
    return [line, col];
  }

  /**
   * The node at `path`, or the nearest ancestor that exists (a missing key, or
   * a value that came from a var or a merge key). With `key`, the key node of
   * the last segment, for messages about the key itself.
   */
  private nodeAt(path: Path, key: boolean): Node | undefined {
    let node: unknown = this.doc.contents;
    for (let i = 0; i < path.length; i++) {
      if (isAlias(node)) node = node.resolve(this.doc);
      const seg = path[i];
      if (isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) return node;
        if (key && i === path.length - 1 && isScalar(pair.key)) return pair.key;
        if (!pair.value) return isScalar(pair.key) ? pair.key : node;
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number' && node.items[seg]) {
        node = node.items[seg];
      } else {
        return node as Node | undefined;
      }
    }
    return node as Node | undefined;
  }

  line(path: Path): number {
    const range = this.nodeAt(path, false)?.range;
    return range ? this.position(range[0])[0] : 1;
  }

  /** `FILE:LINE:COL: PATH` of the value at `path`, for messages about it later. */
  where(path: Path): string {
    const range = this.nodeAt(path, false)?.range;
    const [line, column] = range ? this.position(range[0]) : [1, 1];
    return `${this.file}:${line}:${column}: ${formatPath(path)}`;
  }

  /** Silences later issues at or under `path`. */
  suppress(path: Path): void {
    this.suppressed.push(formatPath(path));
  }

  add(path: Path, message: string, opts: { key?: boolean } = {}): void {
    const p = formatPath(path);
    if (this.suppressed.some((s) => p === s || p.startsWith(`${s}.`) || p.startsWith(`${s}[`) || s === '')) return;
    const range = this.nodeAt(path, opts.key ?? false)?.range;
    const [line, column] = range ? this.position(range[0]) : [1, 1];
    this.issues.push({ file: this.file, line, column, path: p, message });
  }

  /** Throws every issue found, in file order. */
  check(): void {
    if (this.issues.length === 0) return;
    const sorted = this.issues
      .map((issue, n) => ({ issue, n }))
      .sort((a, b) => a.issue.line - b.issue.line || a.issue.column - b.issue.column || a.n - b.n)
      .map((x) => x.issue);
    throw new PlanError(sorted);
  }
}

function firstLine(s: string): string {
  return s.split('\n')[0];
}

function positionIn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  let line = 1;
  for (let i = before.indexOf('\n'); i >= 0; i = before.indexOf('\n', i + 1)) line++;
  return { line, column: offset - before.lastIndexOf('\n') };
}

/** What refuses a file before the parser reads it: its size, a control character, too many values. */
function textProblem(file: string, text: string): PlanIssue | undefined {
  const issue = (offset: number, message: string): PlanIssue => ({ file, ...positionIn(text, offset), path: '', message });
  const bytes = Buffer.byteLength(text);
  if (bytes > MAX_YAML_BYTES)
    return issue(
      0,
      `the file is ${bytes.toLocaleString('en-US')} bytes; a plan, pipeline, task or vars file is at most ${MAX_YAML_BYTES.toLocaleString('en-US')} bytes (4 MB; a plan must fit in Temporal's 2 MB payload): move large data into a file of an input (-i)`,
    );
  const control = NOT_PRINTABLE.exec(text);
  if (control) {
    const code = `U+${control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
    return issue(
      control.index,
      control[0] === '\0'
        ? `invalid YAML: a NUL byte (${code}): is this a binary file? A YAML file is text; write a NUL inside a value as "\\0" in double quotes`
        : `invalid YAML: control character ${code} is not allowed in YAML: remove it, or write it as an escape in a double-quoted string ("\\u${code.slice(2)}")`,
    );
  }
  // The lexer is fast and stops at the limit; the parser would take seconds and gigabytes first.
  let nodes = 0;
  let offset = 0;
  for (const token of new Lexer().lex(text)) {
    // Markers the lexer adds (document, scalar, flow end) are not in the text.
    const marker = token.length === 1 && (token === '\x02' || token === '\x18' || token === '\x1f');
    if (token === '\x1f' || (!marker && '"\'|>*{['.includes(token[0]))) nodes++;
    if (nodes > MAX_YAML_NODES)
      return issue(
        offset,
        `invalid YAML: the file holds more than ${MAX_YAML_NODES.toLocaleString('en-US')} values by here; no plan that large fits in Temporal's 2 MB payload: move large data into a file of an input (-i)`,
      );
    if (!marker) offset += token.length;
  }
  return undefined;
}

/** The offset of the first collection nested deeper than MAX_YAML_DEPTH, walking the CST without recursion. */
function tooDeep(tokens: CST.Token[]): number | undefined {
  const stack: [CST.Token, number][] = tokens.map((t) => [t, 0]).reverse() as [CST.Token, number][];
  for (let next = stack.pop(); next; next = stack.pop()) {
    const [token, depth] = next;
    if (token.type === 'document' && token.value) stack.push([token.value, depth]);
    if (token.type !== 'block-map' && token.type !== 'block-seq' && token.type !== 'flow-collection') continue;
    if (depth >= MAX_YAML_DEPTH) return token.offset;
    const children: CST.Token[] = [];
    for (const item of token.items) {
      if (item.key) children.push(item.key);
      if (item.value) children.push(item.value);
    }
    for (const child of children.reverse()) stack.push([child, depth + 1]);
  }
  return undefined;
}

/** parseDocument's composition, on tokens already parsed: one document, a second one an error at its start. */
function composeOne(tokens: CST.Token[], length: number): Document.Parsed {
  // merge: Concourse pipelines commonly share config through `<<: *anchor`. uniqueKeys: the
  // library compares every key of a map with every other (seconds for a map of 20,000 keys);
  // badPair finds a repeated key in one pass instead.
  const composer = new Composer({ merge: true, uniqueKeys: false, prettyErrors: false });
  let doc: Document.Parsed | undefined;
  for (const next of composer.compose(tokens, true, length)) {
    if (!doc) {
      doc = next;
      continue;
    }
    doc.errors.push(
      new YAMLParseError(
        [next.range[0], next.range[1]],
        'MULTIPLE_DOCS',
        'a second YAML document (`---`) starts here; a plan, pipeline, task or vars file holds one: remove the `---`, or split the file',
      ),
    );
    break;
  }
  return doc!;
}
