// The fake runtime's "process": a `sh -c SCRIPT` task or service interpreted in memory, for the
// few commands the workflow-semantics tests need. Files live in a map (the task's work dir);
// nothing is spawned. A command outside this list ends the script with 127 and says so on
// stderr, as a shell says "not found".
import { setTimeout as delay } from 'node:timers/promises';
import { constants as osConstants } from 'node:os';
import { parse, type ParseEntry } from 'shell-quote';
import type { TaskSignal } from '../../activities/runtime/types';

const SUPPORTED = 'echo, cat, touch, exit, true, false, sleep, test/[ (= != -eq -ne -n -z -e), mkdir, :';

/** A running script: its output so far, its end, and a way to signal it. */
export class FakeProcess {
  readonly stdout: Buffer[] = [];
  readonly stderr: Buffer[] = [];
  readonly done: Promise<number>;
  private readonly killer = new AbortController();
  private signalled?: TaskSignal;

  constructor(
    script: string,
    private readonly env: Record<string, string>,
    /** the work dir: relative path -> content */
    readonly files: Map<string, string>,
    /** files at absolute paths, shared by every script of the runtime: what tests observe steps through */
    private readonly host: Map<string, string> = new Map(),
  ) {
    this.done = this.run(script);
  }

  signal(signal: TaskSignal): void {
    this.signalled ??= signal;
    this.killer.abort();
  }

  /** Where a file lives: the host's files for an absolute path, else the work dir's. */
  private at(file: string): [Map<string, string>, string] {
    return file.startsWith('/') ? [this.host, file] : [this.files, normal(file)];
  }

  /** A file, or a directory (a prefix of a file's path). */
  private exists(file: string): boolean {
    const [files, key] = this.at(file);
    return files.has(key) || [...files.keys()].some((k) => k.startsWith(`${key}/`));
  }

  /** All of one stream so far. */
  output(stream: 'stdout' | 'stderr'): Buffer {
    return Buffer.concat(stream === 'stdout' ? this.stdout : this.stderr);
  }

  private async run(script: string): Promise<number> {
    const tokens = parse(script, (name: string) => this.env[name] ?? '');
    let status = 0;
    let skip = false;
    for (const command of split(tokens)) {
      if (!skip) {
        const result = await this.exec(command.words, command.redirect);
        if (this.signalled) return 128 + osConstants.signals[this.signalled];
        if (result.exit !== undefined) return result.exit;
        status = result.status;
      }
      // `a && b`: b runs only when a succeeded; `a || b` only when it failed; `;` always.
      skip = (command.then === '&&' && status !== 0) || (command.then === '||' && status === 0);
    }
    return status;
  }

  private async exec(words: string[], redirect?: Redirect): Promise<{ status: number; exit?: number }> {
    const [name, ...args] = words;
    const out = (text: string) => {
      if (redirect?.stderr) this.stderr.push(Buffer.from(text));
      else if (redirect?.file) {
        const [files, key] = this.at(redirect.file);
        files.set(key, (redirect.append ? (files.get(key) ?? '') : '') + text);
      } else this.stdout.push(Buffer.from(text));
    };
    switch (name) {
      case undefined:
      case ':':
      case 'true':
      case 'mkdir':
        return { status: 0 };
      case 'touch':
        for (const file of args) {
          const [files, key] = this.at(file);
          files.set(key, files.get(key) ?? '');
        }
        return { status: 0 };
      case 'false':
        return { status: 1 };
      case 'exit':
        return { status: 0, exit: Number(args[0] ?? 0) };
      case 'echo': {
        const noNewline = args[0] === '-n';
        out((noNewline ? args.slice(1) : args).join(' ') + (noNewline ? '' : '\n'));
        return { status: 0 };
      }
      case 'cat': {
        for (const file of args) {
          const [files, key] = this.at(file);
          const content = files.get(key);
          if (content === undefined) {
            this.stderr.push(Buffer.from(`cat: ${file}: No such file or directory\n`));
            return { status: 1 };
          }
          out(content);
        }
        return { status: 0 };
      }
      case 'sleep':
        await delay(Number(args[0]) * 1000, undefined, { signal: this.killer.signal }).catch(() => undefined);
        return { status: 0 };
      case 'test':
      case '[':
        return { status: test(name === '[' ? args.slice(0, -1) : args, (f) => this.exists(f)) ? 0 : 1 };
      default:
        this.stderr.push(Buffer.from(`sh: ${name}: the fake runtime runs only ${SUPPORTED}\n`));
        return { status: 127 };
    }
  }
}

interface Redirect {
  file?: string;
  append?: boolean;
  stderr?: boolean;
}

interface Command {
  words: string[];
  redirect?: Redirect;
  /** the operator after it */
  then?: string;
}

function split(tokens: ParseEntry[]): Command[] {
  const commands: Command[] = [];
  let current: Command = { words: [] };
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (typeof t === 'string') {
      current.words.push(t);
      continue;
    }
    if (!('op' in t)) throw new Error(`the fake runtime's shell cannot read ${JSON.stringify(t)}`);
    if (t.op === '>' || t.op === '>>') {
      const target = String(tokens[++i]);
      current.redirect = { file: target, append: t.op === '>>' };
    } else if (t.op === '>&') {
      i++;
      current.redirect = { stderr: true };
    } else {
      current.then = t.op;
      commands.push(current);
      current = { words: [] };
    }
  }
  commands.push(current);
  return commands;
}

function test(args: string[], exists: (file: string) => boolean): boolean {
  const [a, op, b] = args;
  if (args.length === 2 && (a === '-e' || a === '-f' || a === '-d')) return exists(op);
  if (op === '=') return a === b;
  if (op === '!=') return a !== b;
  if (op === '-eq') return Number(a) === Number(b);
  if (op === '-ne') return Number(a) !== Number(b);
  if (args.length === 2 && a === '-n') return (op ?? '') !== '';
  if (args.length === 2 && a === '-z') return (op ?? '') === '';
  return args.length === 1 && a !== '';
}

/** `./a/b` and `a//b` are `a/b`: files are keyed by their path relative to the work dir. */
export function normal(file: string): string {
  return file
    .split('/')
    .filter((part) => part !== '' && part !== '.')
    .join('/');
}
