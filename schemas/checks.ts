// Checks that fail a plan before its build starts, for what would otherwise fail inside the
// engine where no retry can help: paths that leave their directory, names that are not one
// path segment, step ids too long for a file name, environments too large for a process,
// payloads too large for Temporal, bytes that are not UTF-8.
import fs from 'node:fs';
import path from 'node:path';
import type { CompiledPlan, Step, TaskConfig } from './compiled';
import { MAX_YAML_BYTES, PlanError, type Path, type Source } from './errors';
import {
  acrossProblem,
  artifactFileProblem,
  attemptsProblem,
  envNameProblem,
  MAX_NAME_BYTES,
  nameProblem,
  nulProblem,
  relativePathProblem,
} from './safe-values';

export { nameProblem, relativePathProblem };

/** Temporal's default limit on one payload (the server's blob size limit); the whole plan travels in one. */
export const TEMPORAL_PAYLOAD_LIMIT = 2 * 1024 * 1024;
/** Linux's MAX_ARG_STRLEN (32 pages): the longest single environment variable or argument a process accepts. */
export const MAX_ARG_STRLEN = 32 * 4096;
/**
 * What a step's environment and arguments may take together: Linux's ARG_MAX is a quarter of
 * the default 8 MB stack, and the engine adds variables of its own.
 */
export const MAX_ARGS_TOTAL = 1024 * 1024;
/** A step id (with `.across.<i>` parts added at run time) names a directory: at most NAME_MAX bytes. */
export const MAX_STEP_ID = MAX_NAME_BYTES;
/** What `.across.<i>.<j>` adds to the id of an across step's iterations, per var, when the count is not known yet. */
const ACROSS_ID_WORST = '.across'.length;
const ACROSS_INDEX_WORST = '.99999'.length;

export function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${n} bytes`;
}

/** Artifact names and the paths of a task config's inputs, outputs, caches and `run.dir`; its environment's size. */
export function checkTaskConfig(src: Source, c: TaskConfig, at: Path): void {
  const lists = [
    ['inputs', c.inputs],
    ['outputs', c.outputs],
  ] as const;
  for (const [key, list] of lists) {
    list.forEach((item, i) => {
      const bad = nameProblem(item.name);
      if (bad) src.add([...at, key, i, 'name'], bad);
      const badPath = item.path === undefined ? undefined : relativePathProblem(item.path);
      if (badPath) src.add([...at, key, i, 'path'], badPath);
    });
  }
  c.caches.forEach((cache, i) => {
    const bad = relativePathProblem(cache.path);
    if (bad) src.add([...at, 'caches', i, 'path'], bad);
    else if (path.posix.normalize(`${cache.path}/`) === './')
      src.add([...at, 'caches', i, 'path'], 'a cache cannot be the whole working directory; name a directory inside it');
  });
  const dir = c.run.dir === undefined ? undefined : relativePathProblem(c.run.dir);
  if (dir) src.add([...at, 'run', 'dir'], dir);
  checkEnvironment(src, c.params, [...at, 'params']);
  const command = nulProblem('`run.path`', c.run.path);
  if (command) src.add([...at, 'run', 'path'], command);
  c.run.args.forEach((arg, i) => {
    const nul = nulProblem('this argument', arg);
    if (nul) src.add([...at, 'run', 'args', i], nul);
    if (Buffer.byteLength(arg) >= MAX_ARG_STRLEN) {
      src.add(
        [...at, 'run', 'args', i],
        `this argument is ${formatBytes(Buffer.byteLength(arg))}; a process accepts at most ${formatBytes(MAX_ARG_STRLEN)} per argument: pass large data as a file in an input (-i)`,
      );
    }
  });
}

/** Each variable of an environment: a name execve takes, no NUL, and MAX_ARG_STRLEN for its `NAME=value` string. */
function checkEnvironment(src: Source, env: Record<string, string>, at: Path): void {
  for (const [name, value] of Object.entries(env)) {
    for (const problem of envProblems({ [name]: value })) src.add([...at, name], problem, { key: problem.startsWith('param name') });
  }
}

/** What is wrong with each variable of an environment: its name, a NUL in its value, its size. */
export function envProblems(env: Record<string, string>): string[] {
  return Object.entries(env).flatMap(([name, value]) => {
    const badName = envNameProblem(name);
    if (badName) return [`param name: ${badName}`];
    const nul = nulProblem(`param \`${name}\``, value);
    if (nul) return [nul];
    const size = Buffer.byteLength(name) + 1 + Buffer.byteLength(value);
    return size >= MAX_ARG_STRLEN ? [envProblem(name, size)] : [];
  });
}

function envProblem(name: string, size: number): string {
  return `param \`${name}\` is ${formatBytes(size)}; a process accepts at most ${formatBytes(MAX_ARG_STRLEN)} per environment variable: pass large data as a file in an input (-i)`;
}

/** An issue at a step's line, for checks of the compiled plan (whose steps keep their line, not their YAML path). */
function addAtLine(src: Source, line: number, where: string, message: string): void {
  src.issues.push({ file: src.file, line, column: 1, path: where, message });
}

function envSize(env: Record<string, string>): number {
  return Object.entries(env).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v) + 2, 0);
}

/**
 * Every step of `step`'s tree, with what `across` adds to its id at run time and how many times
 * it runs (the enclosing across' numbers of values multiplied; a ((.:var)) list counts 1, unknown
 * until the step runs).
 */
function* walk(step: Step, extra = 0, times = 1): Generator<{ step: Step; extra: number; times: number }> {
  const own = step.across ? extra + ACROSS_ID_WORST + step.across.vars.length * ACROSS_INDEX_WORST : extra;
  const ownTimes = step.across ? step.across.vars.reduce((n, v) => n * (Array.isArray(v.values) ? v.values.length : 1), times) : times;
  yield { step, extra: own, times: ownTimes };
  const children: Step[] = [];
  if (step.kind === 'do' || step.kind === 'in_parallel') children.push(...step.steps);
  if (step.kind === 'try') children.push(step.step);
  for (const hook of Object.values(step.hooks ?? {})) if (hook) children.push(hook);
  // Hooks wrap across, so they do not get its suffix; the step's own children do.
  for (const child of children) {
    const hook = Object.values(step.hooks ?? {}).includes(child);
    yield* walk(child, hook ? extra : own, hook ? times : ownTimes);
  }
}

/** Checks of the whole compiled plan; issues go to `src` at each step's line. */
export function checkPlan(src: Source, plan: CompiledPlan, namePath: Path): void {
  const bad = nameProblem(plan.name);
  if (bad) src.add(namePath, `plan name: ${bad}`);
  let tooMany = false;
  for (const { step, extra, times } of walk(plan.plan)) {
    const length = Buffer.byteLength(step.id) + extra;
    if (length > MAX_STEP_ID) {
      addAtLine(
        src,
        step.line ?? 1,
        step.id,
        `steps nested too deeply: this step's id is ${length} bytes${extra ? ' with its across indices' : ''}, and a step id becomes a directory name of at most ${MAX_STEP_ID} bytes; nest fewer do/try/in_parallel levels`,
      );
      return; // every step below is deeper still: one message says it
    }
    // Said once, at the outermost step that runs too often: the steps inside it run as often.
    const runsTooOften: string | undefined = tooMany || !step.across ? undefined : acrossProblem(times);
    if (runsTooOften) addAtLine(src, step.line ?? 1, `${step.id}.across`, runsTooOften);
    tooMany ||= runsTooOften !== undefined;
    const attempts = step.attempts === undefined ? undefined : attemptsProblem(step.attempts);
    if (attempts) addAtLine(src, step.line ?? 1, `${step.id}.attempts`, attempts);
    for (const [at, file] of filesOf(step)) {
      const problem = artifactFileProblem(file);
      if (problem) addAtLine(src, step.line ?? 1, `${step.id}.${at}`, problem);
    }
    // A get's or put's name is the artifact it makes, a directory like a task output's (Concourse only warns).
    const names: [string, string][] =
      step.kind === 'get' || step.kind === 'put'
        ? [
            [step.kind, step.name],
            ...(step.kind === 'put' && Array.isArray(step.inputs) ? step.inputs.map((n, i): [string, string] => [`inputs[${i}]`, n]) : []),
          ]
        : step.kind === 'task'
          ? [
              ...Object.entries(step.inputMapping).flatMap(([k, v]): [string, string][] => [
                [`input_mapping.${k}`, k],
                [`input_mapping.${k}`, v],
              ]),
              ...Object.entries(step.outputMapping).flatMap(([k, v]): [string, string][] => [
                [`output_mapping.${k}`, k],
                [`output_mapping.${k}`, v],
              ]),
            ]
          : [];
    for (const [at, name] of names) {
      const problem = name.includes('((') ? undefined : nameProblem(name);
      if (problem) addAtLine(src, step.line ?? 1, `${step.id}.${at}`, `artifact name: ${problem}`);
    }
    for (const [i, service] of (step.services ?? []).entries()) {
      for (const problem of envProblems(service.params)) addAtLine(src, step.line ?? 1, `${step.id}.services[${i}].params`, problem);
    }
    if (step.kind !== 'task') continue;
    for (const problem of envProblems(step.params)) addAtLine(src, step.line ?? 1, `${step.id}.params`, problem);
    if (!step.config) continue;
    const total =
      envSize({ ...step.config.params, ...step.params }) + step.config.run.args.reduce((n, a) => n + Buffer.byteLength(a) + 1, 0);
    if (total > MAX_ARGS_TOTAL) {
      addAtLine(
        src,
        step.line ?? 1,
        step.id,
        `task \`${step.task}\`: its params and arguments take ${formatBytes(total)}; a process accepts at most about ${formatBytes(MAX_ARGS_TOTAL)} of environment and arguments together: pass large data as a file in an input (-i)`,
      );
    }
  }
}

/** The files a step reads from artifacts, `<artifact>/<path>`, by the key that names each. */
export function filesOf(step: Step): [string, string][] {
  const services = (step.services ?? []).flatMap((s, i): [string, string][] =>
    s.file === undefined ? [] : [[`services[${i}].file`, s.file]],
  );
  if (step.kind === 'task' && step.file !== undefined) return [['file', step.file], ...services];
  if (step.kind === 'load_var') return [['file', step.file], ...services];
  if (step.kind === 'set_pipeline')
    return [['file', step.file], ...step.varFiles.map((f, i): [string, string] => [`var_files[${i}]`, f]), ...services];
  return services;
}

/** The compiled plan against Temporal's payload limit: it is the build workflow's input. */
export function checkPayloadSize(plan: CompiledPlan): void {
  // Counted, not stringified: a 100 KB var used 30,000 times made a 3 GB string ("Invalid string length").
  const size = jsonBytes(plan, PAYLOAD_COUNT_LIMIT);
  if (size <= TEMPORAL_PAYLOAD_LIMIT) return;
  throw new PlanError([
    {
      file: plan.source,
      line: 1,
      column: 1,
      path: '',
      message: `the plan is ${size > PAYLOAD_COUNT_LIMIT ? `more than ${formatBytes(PAYLOAD_COUNT_LIMIT)}` : formatBytes(size)} once vars are filled in; Temporal accepts at most ${formatBytes(TEMPORAL_PAYLOAD_LIMIT)} per payload: move large data into an input with -i`,
    },
  ]);
}

/** Where counting a plan's JSON size stops: far past the payload limit, and far below a string too long to make. */
const PAYLOAD_COUNT_LIMIT = 64 * TEMPORAL_PAYLOAD_LIMIT;

/**
 * The UTF-8 bytes of JSON.stringify(value), counted without making the string, without recursion,
 * and only until they pass `stop` (then some number above it).
 */
export function jsonBytes(value: unknown, stop: number): number {
  let total = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0 && total <= stop) {
    const v = stack.pop();
    if (typeof v === 'string') total += Buffer.byteLength(JSON.stringify(v));
    else if (typeof v === 'number' || typeof v === 'boolean' || v === null) total += String(JSON.stringify(v)).length;
    else if (Array.isArray(v)) {
      total += 2 + Math.max(0, v.length - 1);
      // undefined and functions in a list are written null
      for (const item of v) stack.push(item === undefined || typeof item === 'function' ? null : item);
    } else if (typeof v === 'object') {
      const entries = Object.entries(v as object).filter(([, x]) => x !== undefined && typeof x !== 'function');
      total += 2 + Math.max(0, entries.length - 1);
      for (const [k, x] of entries) {
        total += Buffer.byteLength(JSON.stringify(k)) + 1;
        stack.push(x);
      }
    }
  }
  return total;
}

/** Vars against Temporal's payload limit, named, before they are buried in the plan. */
export function varProblems(vars: Record<string, unknown>): string[] {
  return Object.entries(vars).flatMap(([name, value]) => {
    const size = Buffer.byteLength(typeof value === 'string' ? value : (JSON.stringify(value) ?? ''));
    return size > TEMPORAL_PAYLOAD_LIMIT
      ? [
          `var \`${name}\` is ${formatBytes(size)}; Temporal accepts at most ${formatBytes(TEMPORAL_PAYLOAD_LIMIT)} per payload: move large data into an input with -i`,
        ]
      : [];
  });
}

/**
 * Reads a YAML file the user named (a path, or 0 for stdin) and decodes it as strict UTF-8,
 * reading at most MAX_YAML_BYTES and one more: /dev/zero, /dev/urandom or a pipe that never
 * ends is refused at the limit, where reading it whole took gigabytes and never ended. I/O
 * errors (ENOENT, EISDIR) are thrown as they are, for the caller to word.
 */
export function readYamlFile(file: string | 0, name: string = String(file)): string {
  const fd = file === 0 ? 0 : fs.openSync(file, 'r');
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for (;;) {
      const chunk = Buffer.alloc(Math.min(1024 * 1024, MAX_YAML_BYTES + 1 - total));
      let n: number;
      try {
        n = fs.readSync(fd, chunk, 0, chunk.length, null);
      } catch (err) {
        // A non-blocking stdin with nothing yet: wait a little, as readFileSync would not.
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
        continue;
      }
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      total += n;
      if (total > MAX_YAML_BYTES) {
        throw new PlanError([
          {
            file: name,
            line: 1,
            column: 1,
            path: '',
            message: `the file is larger than ${MAX_YAML_BYTES.toLocaleString('en-US')} bytes (4 MB), the most a plan, pipeline, task or vars file may be (a plan must fit in Temporal's 2 MB payload): is it the file you meant?`,
          },
        ]);
      }
    }
  } finally {
    if (fd !== 0) fs.closeSync(fd);
  }
  return decodeUtf8(Buffer.concat(chunks), name);
}

/**
 * Decodes a file as strict UTF-8: invalid bytes are an error with their line and column,
 * instead of silently becoming U+FFFD in a command or a param.
 */
export function decodeUtf8(bytes: Buffer, file: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const bad = firstInvalidUtf8(bytes);
    const before = bytes.subarray(0, bad);
    const line = before.filter((b) => b === 0x0a).length + 1;
    const column = new TextDecoder().decode(before.subarray(before.lastIndexOf(0x0a) + 1)).length + 1;
    throw new PlanError([
      {
        file,
        line,
        column,
        path: '',
        message: `invalid UTF-8 (byte 0x${bytes[bad].toString(16).padStart(2, '0')} at offset ${bad}): save the file as UTF-8`,
      },
    ]);
  }
}

/** Where the first byte that is not UTF-8 is (lead bytes, continuations, overlongs, surrogates, beyond U+10FFFF). */
function firstInvalidUtf8(b: Buffer): number {
  const cont = (i: number, lo = 0x80, hi = 0xbf) => i < b.length && b[i] >= lo && b[i] <= hi;
  for (let i = 0; i < b.length;) {
    const c = b[i];
    let n: number;
    if (c < 0x80) n = 1;
    else if (c >= 0xc2 && c <= 0xdf && cont(i + 1)) n = 2;
    else if (c >= 0xe0 && c <= 0xef && cont(i + 1, c === 0xe0 ? 0xa0 : 0x80, c === 0xed ? 0x9f : 0xbf) && cont(i + 2)) n = 3;
    else if (c >= 0xf0 && c <= 0xf4 && cont(i + 1, c === 0xf0 ? 0x90 : 0x80, c === 0xf4 ? 0x8f : 0xbf) && cont(i + 2) && cont(i + 3)) n = 4;
    else return i;
    i += n;
  }
  return b.length - 1;
}

/**
 * What the CLI's -i/-o flags name that no step of the plan uses; undefined when what a step
 * reads is only known at run time (a task's `file:`, a put of all inputs, a ((.:var)) artifact).
 */
export function unusedArtifactFlags(plan: CompiledPlan, inputs: string[], outputs: string[]): string[] | undefined {
  const used = new Set<string>();
  const produced = new Set<string>();
  // `artifact/path/in/it`: a file read from an artifact, as load_var and set_pipeline name theirs.
  const readsFile = (file: string): boolean => {
    const artifact = file.split('/')[0];
    used.add(artifact);
    return !artifact.includes('((');
  };
  for (const { step } of walk(plan.plan)) {
    if (step.kind === 'task') {
      if (!step.config) return undefined;
      for (const i of step.config.inputs) used.add(step.inputMapping[i.name] ?? i.name);
      for (const o of step.config.outputs) produced.add(step.outputMapping[o.name] ?? o.name);
    } else if (step.kind === 'load_var') {
      if (!readsFile(step.file)) return undefined;
    } else if (step.kind === 'set_pipeline') {
      if (![step.file, ...step.varFiles].every(readsFile)) return undefined;
    } else if (step.kind === 'get') {
      produced.add(step.name);
    } else if (step.kind === 'put') {
      if (!Array.isArray(step.inputs)) return undefined;
      for (const i of step.inputs) used.add(i);
      if (!step.noGet) produced.add(step.name);
    }
  }
  return [
    ...inputs
      .filter((n) => !used.has(n))
      .map((n) => `-i ${n}: no step of the plan has an input named \`${n}\` (inputs: ${[...used].join(', ') || 'none'})`),
    ...outputs
      .filter((n) => !produced.has(n) && !inputs.includes(n))
      .map((n) => `-o ${n}: no step of the plan has an output named \`${n}\` (outputs: ${[...produced].join(', ') || 'none'})`),
  ];
}
