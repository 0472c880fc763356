// The compiled `causeway` binary run as a user runs it, for the CLI's end-to-end tests.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const CAUSEWAY_BIN = path.resolve(__dirname, '../../bin/causeway');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd: string;
  /** The task queue the test's worker polls. */
  queue: string;
  env?: Record<string, string>;
  /** Called with all of stderr so far each time more arrives (to signal the child mid-run). */
  onStderr?: (text: string, child: ChildProcess) => void;
  /** Called with the child as soon as it is spawned (to signal it whatever it printed). */
  onSpawn?: (child: ChildProcess) => void;
  /** What the command reads on stdin (else none). */
  stdin?: string;
}

/** Fails early, naming the fix, when the tests run from a tree that was never built. */
export function requireBuiltCli(): void {
  if (!fs.existsSync(path.resolve(__dirname, '../../dist/cli/main.js'))) throw new Error('run `npm run build` first (npm test does)');
}

export function runCli(args: string[], opts: CliOptions): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(CAUSEWAY_BIN, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env, CAUSEWAY_TASK_QUEUE: opts.queue, NO_COLOR: '1' },
      stdio: [opts.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    if (opts.stdin !== undefined) child.stdin!.end(opts.stdin);
    opts.onSpawn?.(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => {
      stderr += d;
      opts.onStderr?.(stderr, child);
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (process.env.CAUSEWAY_TEST_DEBUG) console.log(args.join(' '), code, stdout, stderr);
      resolve({ code, stdout, stderr });
    });
  });
}
