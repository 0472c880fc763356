// What a value may hold where it becomes a directory name, a path inside a step's directory or
// an artifact, or a process's environment and arguments. Pure (no Node modules): the compiler
// checks a plan file with these rules (checks.ts), and the build workflow checks the input of
// any Temporal client with the same ones (build-input.ts).

/** A name becomes one directory name: at most NAME_MAX bytes. */
export const MAX_NAME_BYTES = 255;

/** UTF-8 bytes of `s`, as Buffer.byteLength counts them (a lone surrogate is 3). */
export function utf8Length(s: string): number {
  let n = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  }
  return n;
}

/** Why `name` cannot name an artifact, a plan or a cache (it becomes one directory name), or undefined. */
export function nameProblem(name: string): string | undefined {
  if (name === '.' || name === '..') return `\`${name}\` is not a name: it would mean another directory`;
  if (name.includes('/')) return `\`${name}\` contains \`/\`: a name becomes one directory name`;
  if (name.includes('\0')) return 'a name must not contain a NUL byte';
  const bytes = utf8Length(name);
  if (bytes > MAX_NAME_BYTES) return `a name is at most ${MAX_NAME_BYTES} bytes (it becomes a directory name); this one is ${bytes}`;
  return undefined;
}

/** `p` as path.posix.normalize leaves it leading out of its directory ("..", "../x"). */
function escapes(p: string): boolean {
  let depth = 0;
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg !== '..') depth++;
    else if (depth === 0) return true;
    else depth--;
  }
  return false;
}

/** Why `p` (relative to the step's working directory) would reach outside it, or undefined. */
export function relativePathProblem(p: string): string | undefined {
  if (p.includes('\0')) return 'a path must not contain a NUL byte';
  if (p.startsWith('/')) return `\`${p}\` is absolute; paths are relative to the task's working directory`;
  if (escapes(p)) return `\`${p}\` leaves the task's working directory`;
  return undefined;
}

/**
 * Why `file`, read from an artifact of the build (a task's, a service's, load_var's or
 * set_pipeline's `file:`, written `<artifact>/<path>`), cannot name a file of one, or undefined.
 * A file holding a ((var)) is checked when the step runs, once it is known.
 */
export function artifactFileProblem(file: string): string | undefined {
  if (file.includes('((')) return undefined;
  const how = "a file here is `<artifact>/<path>` in an artifact of the build (a get, an input, or an earlier step's output)";
  if (file.includes('\0')) return 'a file must not contain a NUL byte';
  if (file.startsWith('/')) return `\`${file}\` is absolute: ${how}`;
  // A file without an artifact (`task.yml`) is said when the step runs, with the artifacts it has.
  const slash = file.indexOf('/');
  if (slash < 0) return undefined;
  const artifact = file.slice(0, slash);
  const rest = file.slice(slash + 1);
  const bad = nameProblem(artifact);
  if (bad) return `\`${file}\`: ${bad}; ${how}`;
  if (escapes(rest)) return `\`${file}\` leaves the artifact \`${artifact}\`: ${how}`;
  return undefined;
}

/** Why `name` cannot name an environment variable (execve's `NAME=value`), or undefined. */
export function envNameProblem(name: string): string | undefined {
  if (name === '') return 'an environment variable needs a name; this one is empty';
  if (name.includes('\0'))
    return `\`${JSON.stringify(name).slice(1, -1)}\` contains a NUL byte, which no environment variable's name can hold`;
  if (name.includes('='))
    return `\`${name}\` contains \`=\`, which no environment variable's name can hold (the environment is NAME=value): rename it`;
  return undefined;
}

/** Why `value` cannot be passed to a process (an argument, the command, an environment value), or undefined. */
export function nulProblem(what: string, value: string): string | undefined {
  return value.includes('\0') ? `${what} contains a NUL byte, which a process cannot be given: remove it` : undefined;
}

/**
 * The most iterations one step may run, its own `across` and the enclosing ones multiplied:
 * each iteration is a step of the build's tree, and the build's history grows with the child
 * workflows that run them (docs/decisions.md, "Big fan-out"): 100,000 is 1,000 parts.
 */
export const MAX_ACROSS_ITERATIONS = 100_000;

/** 100000 as "100,000" (no Intl: this runs in the workflow sandbox too). */
function withCommas(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

export function acrossProblem(iterations: number): string | undefined {
  return iterations > MAX_ACROSS_ITERATIONS
    ? `\`across\` runs this step ${iterations > 1e15 ? 'more than 10^15' : withCommas(iterations)} times (the numbers of values of its vars and of the enclosing ones' multiplied); a build runs a step at most ${withCommas(MAX_ACROSS_ITERATIONS)} times: split the values across builds, or use fewer vars`
    : undefined;
}

/**
 * The most attempts of one step: each runs inline in the build's history (some 7 events), and
 * Temporal ends a history at 51,200 events, so more would end the build with Temporal's error
 * instead of the step's.
 */
export const MAX_ATTEMPTS = 1000;

export function attemptsProblem(attempts: number): string | undefined {
  return attempts > MAX_ATTEMPTS
    ? `attempts is at most ${withCommas(MAX_ATTEMPTS)} (each attempt is recorded in the build's history, which Temporal ends at 51,200 events); this is ${attempts > 1e15 ? 'more than 10^15' : withCommas(attempts)}`
    : undefined;
}
