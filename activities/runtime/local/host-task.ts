// What the runtimes that run a task on this host (local: a process, containerd: a container)
// share: the step's directory, where the task's work dir, output files and exit status live;
// finding or starting the task by it; its inputs placed and its outputs made in its work dir; its
// log read from the files; an artifact's file read from its directory.
import { statSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { TaskConfig, TaskStep } from '../../../schemas/compiled';
import { safeJoin } from '../../artifacts';
import { paths, type ActivityDeps } from '../../deps';
import { StepErrored } from '../../errors';
import { asPermanent } from '../../permanent';
import { openFileInside } from '../../safe-path';
import type { Artifacts } from '../../types';
import type { LogOffsets, LogPiece, MappedInput, ResolvedTask, Runtime, TaskHandle } from '../types';
import { placeInputs, type ViewLayers } from './inputs';
import { FILES } from './process';
import { readFrom } from './step-log';

/** How one runtime finds, starts and follows a task in its step's directory. */
export interface HostTask<T> {
  /** what an earlier attempt of this step left running (or ended, its status recorded), if anything */
  find(dir: string): Promise<T | undefined>;
  /** prepares and starts the task; removes what it made when it fails */
  start(dir: string): Promise<T>;
  handle(task: T, dir: string, reattached: boolean): TaskHandle;
}

/**
 * Finds or starts a task. Idempotent by name: the step's directory derives from build, run, step
 * and attempt, so a retry after a worker crash finds what the first attempt started (running or
 * ended) and re-attaches instead of starting it again.
 */
export async function findOrStartHostTask<T>(deps: ActivityDeps, task: ResolvedTask, host: HostTask<T>): Promise<TaskHandle> {
  const { req } = task;
  let dir: string;
  try {
    dir = paths.step(deps.home, req.buildId, req.runId, req.step.id, req.runKey);
  } catch (err) {
    throw asPermanent(err, `task ${req.step.task}`);
  }
  const found = await host.find(dir);
  if (found !== undefined) {
    deps.log.info({ step: req.step.id, dir }, 're-attached to a step');
    return host.handle(found, dir, true);
  }
  return host.handle(await host.start(dir), dir, false);
}

/**
 * The task's inputs placed in its work dir (copy-on-write views of their producers' outputs where
 * the host allows, see inputs.ts) and its output directories made there, by their names after
 * output_mapping. `views`: the inputs mounted, which the step's end unmounts.
 */
export async function placeTaskFiles(s: {
  dir: string;
  work: string;
  step: TaskStep;
  config: TaskConfig;
  inputs: MappedInput[];
  worker: string;
  runtime: string;
  /** where the views go when the step sees `work` through another mount (containerd's idmapped one) */
  layers?: ViewLayers;
}): Promise<{ outputs: Artifacts; views: string[] }> {
  const placements = s.inputs.map((input) => {
    if (input.ref.kind !== 'dir')
      throw new StepErrored(
        `task ${s.step.task}: input ${input.source} is an output of pod ${input.ref.pod}, which the ${s.runtime} runtime cannot read`,
      );
    return { from: input.ref.path, to: safeJoin(s.work, input.path) };
  });
  const outputPaths = s.config.outputs.map((output) => safeJoin(s.work, output.path ?? output.name));
  const caches = s.config.caches.map((cache) => safeJoin(s.work, cache.path));
  const views = await placeInputs(s.dir, placements, [...outputPaths, ...caches], s.layers);
  const outputs: Artifacts = {};
  for (const [i, output] of s.config.outputs.entries()) {
    await fs.mkdir(outputPaths[i], { recursive: true });
    outputs[s.step.outputMapping[output.name] ?? output.name] = { kind: 'dir', worker: s.worker, path: outputPaths[i] };
  }
  return { outputs, views };
}

/** The task's run.dir in its work dir on this host; a missing one is a configuration error, not a task that ran and failed. */
export async function runDir(step: TaskStep, config: TaskConfig, work: string): Promise<string> {
  const cwd = safeJoin(work, config.run.dir ?? '.');
  let isDir = false;
  try {
    // Synchronous: one system call, where a thread-pool round trip waited for a CPU under load.
    isDir = statSync(cwd, { throwIfNoEntry: false })?.isDirectory() ?? false;
  } catch {
    // a path through a file, or out of reach: no such directory either
  }
  if (!isDir) throw new StepErrored(`task ${step.task}: run.dir ${config.run.dir}: no such directory in the task's working directory`);
  return cwd;
}

/** The task's output written after `from`, from its files in the step's directory. */
export async function readTaskLogs(dir: string, from: LogOffsets): Promise<LogPiece[]> {
  const pieces: LogPiece[] = [];
  for (const stream of ['stdout', 'stderr'] as const) {
    const offset = from[stream] ?? 0;
    const data = readFrom(path.join(dir, FILES[stream]), offset);
    if (data) pieces.push({ stream, offset, data });
  }
  return pieces;
}

/** One file of an artifact in a directory on this host, never through a link out of it. */
export function readDirArtifactFile(runtime: string): Runtime['readArtifactFile'] {
  return async ({ artifact, ref, rel }) => {
    if (ref.kind !== 'dir')
      throw new StepErrored(`artifact ${artifact} is an output of pod ${ref.pod}, which the ${runtime} runtime cannot read`);
    return openFileInside(ref.path, rel);
  };
}
