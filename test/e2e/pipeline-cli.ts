// The set-up the pipeline e2e tests share (a harness, a directory to run the CLI in), what they
// read back through the CLI (`causeway jobs --json`, `causeway pipelines --json`), and the
// resource types they write as Node scripts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startHarness, waitFor, type Harness } from '../workflows/harness';
import { requireBuiltCli, runCli, type CliResult } from './cli-runner';

export interface PipelineSuite {
  /** The file's harness (a worker on a task queue of its own): set in beforeAll. */
  readonly h: Harness;
  /** The file's directory, the CLI's cwd, removed in afterAll: set in beforeAll. */
  readonly dir: string;
  /** The built CLI run in `dir` against the harness's task queue. */
  cli(...args: string[]): Promise<CliResult>;
  /** `cli` with more environment variables. */
  cliEnv(args: string[], env: Record<string, string>): Promise<CliResult>;
  /** `cli` that throws, with what the command printed, unless it exits 0. */
  ok(...args: string[]): Promise<CliResult>;
}

/**
 * Registers a pipeline e2e file's set-up: a 10-minute timeout, a harness started in beforeAll
 * (after checking the CLI is built) and a temporary directory `causeway-<name>-…`, stopped and
 * removed in afterAll. A file's own beforeAll hooks, registered after this call, run after it.
 * `h` and `dir` are there only from beforeAll on: read them in hooks and tests, not at load.
 * `shared` makes the directory 0755 (mkdtemp's is 0700), for steps that run as their build's uid.
 */
export function pipelineSuite(name: string, opts: { shared?: boolean } = {}): PipelineSuite {
  jest.setTimeout(600_000);
  let h: Harness | undefined;
  let dir: string | undefined;
  const ready = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`pipelineSuite('${name}'): ${what} is set in beforeAll; read it in a hook or a test`);
    return value;
  };
  beforeAll(async () => {
    requireBuiltCli();
    h = await startHarness({ killGraceMs: 1000 });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `causeway-${name}-`));
    if (opts.shared) fs.chmodSync(dir, 0o755);
  });
  afterAll(async () => {
    await h!.stop();
    fs.rmSync(dir!, { recursive: true, force: true });
  });
  const cliEnv = (args: string[], env?: Record<string, string>): Promise<CliResult> =>
    runCli(args, { cwd: ready(dir, 'dir'), queue: ready(h, 'the harness').taskQueue, env });
  return {
    get h() {
      return ready(h, 'the harness');
    },
    get dir() {
      return ready(dir, 'dir');
    },
    cli: (...args) => cliEnv(args),
    cliEnv,
    ok: async (...args) => {
      const r = await cliEnv(args);
      if (r.code !== 0) throw new Error(`${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
      return r;
    },
  };
}

export interface JobRow {
  name: string;
  paused: boolean;
  builds: { number: number; status: string; id: string }[];
}

/** A row of `pipelines --json`. */
export interface PipelineListRow {
  name: string;
  instance_vars?: Record<string, unknown>;
  ref: string;
  paused: boolean;
  archived: boolean;
  jobs: number;
  resources: number;
}

export function pipelineReader(cli: (...args: string[]) => Promise<CliResult>) {
  const jobs = async (pipeline: string): Promise<Record<string, JobRow>> => {
    const r = await cli('jobs', '-p', pipeline, '--json');
    expect(r.code).toBe(0);
    return Object.fromEntries((JSON.parse(r.stdout) as JobRow[]).map((j) => [j.name, j]));
  };
  return {
    jobs,
    /** `pipelines --json` by ref; with `--include-archived` (`archived`) the archived ones too. */
    pipelines: async (...flags: '--include-archived'[]): Promise<Record<string, PipelineListRow>> => {
      const r = await cli('pipelines', '--json', ...flags);
      expect(r.code).toBe(0);
      return Object.fromEntries((JSON.parse(r.stdout) as PipelineListRow[]).map((p) => [p.ref, p]));
    },
    /** Each job's builds as `#N status`. */
    buildLines: async (pipeline: string): Promise<Record<string, string[]>> =>
      Object.fromEntries(Object.values(await jobs(pipeline)).map((j) => [j.name, j.builds.map((b) => `#${b.number} ${b.status}`)])),
    /** Waits until build `number` of the job has ended, and returns its status. */
    ended: (pipeline: string, job: string, number: number): Promise<string> =>
      waitFor(
        `${pipeline}/${job} #${number} to end`,
        async () => {
          const b = (await jobs(pipeline))[job]?.builds.find((x) => x.number === number);
          return b && !['pending', 'started'].includes(b.status) ? b.status : undefined;
        },
        120_000,
      ),
  };
}

/** A resource type's check/in/out as a Node script: `req` is the request it read from stdin. */
export function nodeScript(body: string): string {
  return `#!${process.execPath}\nconst fs = require('fs');\nconst req = JSON.parse(fs.readFileSync(0, 'utf8'));\n${body}\n`;
}
