// Concourse's testflight suite (testflight/suite_test.go) as helpers over the `causeway` CLI, so
// the ports in testflight-*.test.ts read like the Go tests: each test gets a pipeline of its own,
// set from a fixture under test/fixtures/testflight/ (copied unchanged from Concourse), and
// destroyed after it.
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startHarness, waitFor, type Harness } from '../workflows/harness';
import type { ChildProcess } from 'node:child_process';
import { requireBuiltCli, runCli, type CliResult } from './cli-runner';
import { pipelineReader } from './pipeline-cli';

export const FIXTURES = path.resolve(__dirname, '../fixtures/testflight');

export interface Testflight {
  /** The current test's pipeline name (pipelineName in the Go suite). */
  readonly pipeline: string;
  /** `causeway ARGS...` (fly(...) without the exit-status check: callers assert it). */
  fly(...args: string[]): Promise<CliResult>;
  /** PIPELINE/thing */
  inPipeline(thing: string): string;
  /** set-pipeline -n -p PIPELINE -c fixtures/NAME.yml ARGS..., which must succeed */
  setPipeline(fixture: string, ...args: string[]): Promise<CliResult>;
  /** setPipeline, then unpause-pipeline (a new pipeline starts paused, as fly's) */
  setAndUnpausePipeline(fixture: string, ...args: string[]): Promise<void>;
  /** check-resource -f version:<uuid>-TAG; returns that version */
  newMockVersion(resource: string, tag: string): Promise<string>;
  /** trigger-job -w -j PIPELINE/JOB */
  triggerAndWatch(job: string): Promise<CliResult>;
  /** waits for build N (default 1) of the job to exist, then watches it to its end */
  waitForBuildAndWatch(job: string, build?: number): Promise<CliResult>;
  /** each of the job's builds as `#N status` */
  builds(job: string): Promise<string[]>;
  /** `causeway ARGS...` left running (spawnFly); interrupted after the test if still running */
  spawnFly(...args: string[]): Spawned;
}

/** A command left running, as gexec.Session. */
export interface Spawned {
  /** resolves when it exits */
  readonly result: Promise<CliResult>;
  exited(): boolean;
  /** stderr so far */
  stderr(): string;
  /** SIGINT (session.Signal(os.Interrupt)); resolves when it has exited */
  interrupt(): Promise<CliResult>;
}

/** Starts a worker for the file's tests and gives each test a fresh pipeline. */
export function testflight(name: string): Testflight {
  let h: Harness;
  let dir: string;
  let pipeline = '';
  let spawned: Spawned[] = [];
  const cli = (...args: string[]): Promise<CliResult> => runCli(args, { cwd: dir, queue: h.taskQueue });
  const reader = pipelineReader(cli);

  beforeAll(async () => {
    requireBuiltCli();
    h = await startHarness({ killGraceMs: 1000 });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `causeway-testflight-${name}-`));
  });
  beforeEach(() => {
    pipeline = `tf-${name}-${randomUUID().slice(0, 8)}`;
  });
  afterEach(async () => {
    await Promise.all(spawned.map((s) => s.interrupt()));
    spawned = [];
    await cli('destroy-pipeline', '-n', '-p', pipeline);
  });
  afterAll(async () => {
    await h?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const expectOk = (r: CliResult, what: string): CliResult => {
    if (r.code !== 0) throw new Error(`${what} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  const tf: Testflight = {
    get pipeline() {
      return pipeline;
    },
    fly: cli,
    inPipeline: (thing) => `${pipeline}/${thing}`,
    setPipeline: async (fixture, ...args) =>
      expectOk(
        await cli('set-pipeline', '-n', '-p', pipeline, '-c', path.join(FIXTURES, `${fixture}.yml`), ...args),
        `set-pipeline ${fixture}`,
      ),
    async setAndUnpausePipeline(fixture, ...args) {
      await tf.setPipeline(fixture, ...args);
      expectOk(await cli('unpause-pipeline', '-p', pipeline), 'unpause-pipeline');
    },
    async newMockVersion(resource, tag) {
      const version = `${randomUUID()}-${tag}`;
      expectOk(await cli('check-resource', '-r', tf.inPipeline(resource), '-f', `version:${version}`), `check-resource ${resource}`);
      return version;
    },
    triggerAndWatch: (job) => cli('trigger-job', '-w', '-j', tf.inPipeline(job)),
    async waitForBuildAndWatch(job, build = 1) {
      await waitFor(
        `${pipeline}/${job} #${build}`,
        async () => ((await reader.jobs(pipeline))[job]?.builds ?? []).some((b) => b.number === build) || undefined,
        120_000,
      );
      return cli('watch', `build-${pipeline}:${job}:${build}`);
    },
    builds: async (job) => ((await reader.buildLines(pipeline))[job] ?? []).slice(),
    spawnFly(...args) {
      let child: ChildProcess | undefined;
      let exited = false;
      let stderr = '';
      const result = runCli(args, {
        cwd: dir,
        queue: h.taskQueue,
        onSpawn: (c) => (child = c),
        onStderr: (text) => (stderr = text),
      }).finally(() => (exited = true));
      const s: Spawned = {
        result,
        exited: () => exited,
        stderr: () => stderr,
        interrupt() {
          if (!exited) child?.kill('SIGINT');
          return result;
        },
      };
      spawned.push(s);
      return s;
    },
  };
  return tf;
}

/** Each of `texts` in `out` in that order (gbytes.Say consumes the buffer as it matches). */
export function expectInOrder(out: string, ...texts: string[]): void {
  let at = 0;
  for (const text of texts) {
    const i = out.indexOf(text, at);
    if (i < 0) throw new Error(`expected ${JSON.stringify(text)} after offset ${at} of:\n${out}`);
    at = i + text.length;
  }
}
