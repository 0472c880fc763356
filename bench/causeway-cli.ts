// `causeway run` as a user runs it, timed from the benchmark: shared by the benchmarks that
// measure a build end to end through the CLI (bench/one-step, bench/peers).
import { spawn } from 'node:child_process';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { repoRoot } from '../cli/dev/stack';

export interface CliRun {
  ms: number;
  buildId: string;
  /** what the CLI wrote on stdout (the steps' output as it followed the build), when asked for */
  stdout?: Buffer;
}

/** Runs `causeway run FILE` against the stack in `home`; resolves to its wall time and the build id it printed. */
export function cliRun(home: string, file: string, extra: string[] = [], opts: { stdout?: boolean } = {}): Promise<CliRun> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(repoRoot(), 'bin', 'causeway'), ['run', file, ...extra], {
      env: { ...process.env, CAUSEWAY_HOME: home, NO_COLOR: '1' },
      stdio: ['ignore', opts.stdout ? 'pipe' : 'ignore', 'pipe'],
    });
    let stderr = '';
    const out: Buffer[] = [];
    child.stdout?.on('data', (d: Buffer) => out.push(d));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const elapsed = performance.now() - t0;
      const id = /build (build-[0-9a-f-]+) started/.exec(stderr)?.[1];
      if (code !== 0 || !id) reject(new Error(`causeway run exited ${code}: ${stderr}`));
      else resolve({ ms: elapsed, buildId: id, stdout: opts.stdout ? Buffer.concat(out) : undefined });
    });
  });
}
