// Errors a user sees: every problem of a file at once, each with FILE:LINE:COL,
// the YAML path of the offending node and what was expected.
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node } from 'yaml';

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
    // merge: Concourse pipelines commonly share config through `<<: *anchor`.
    this.doc = parseDocument(text, { lineCounter: this.lines, merge: true, prettyErrors: false });
    for (const e of [...this.doc.errors]) {
      const [line, column] = this.position(e.pos[0]);
      this.issues.push({ file, line, column, path: '', message: `invalid YAML: ${firstLine(e.message)}` });
    }
    const bad = this.issues.length === 0 ? this.badPair() : undefined;
    if (bad) this.issues.push(bad);
    this.value = this.issues.length === 0 ? this.toJS() : undefined;
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
   * list as a key (stringified, with a warning on stderr), or a merge key (`<<`) whose value is not
   * a map or an alias of one (refused without a place).
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
