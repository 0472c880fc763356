// A build named by its id, or as fly names a job's build: -j PIPELINE/JOB [-b NUMBER].
import type { Client } from '@temporalio/client';
import { CliError } from '../output';

export type BuildRef = { id: string } | { job: string; number?: number };

/** The flags checked before anything connects: a build id, or -j (and -b) instead. */
export function parseBuildRef(id: string | undefined, flags: { job?: string; build?: string }, command: string): BuildRef {
  if (id !== undefined && flags.job !== undefined) throw new CliError('give a build id or -j PIPELINE/JOB, not both');
  if (flags.build !== undefined && flags.job === undefined) throw new CliError('-b NUMBER needs the job: -j PIPELINE/JOB -b NUMBER');
  if (id !== undefined) return { id };
  if (flags.job === undefined)
    throw new CliError(
      'which build? give its id, or -j PIPELINE/JOB for the newest build of a job',
      `e.g. causeway ${command} -j booklit/unit`,
    );
  if (flags.build === undefined) return { job: flags.job };
  const number = Number(flags.build);
  if (!Number.isInteger(number) || number < 1) throw new CliError(`-b takes a build number (1, 2, ...), got ${flags.build}`);
  return { job: flags.job, number };
}

/** The build's workflow id; a job's build is looked up in its pipeline. */
export async function buildIdOf(client: Client, ref: BuildRef): Promise<string> {
  if ('id' in ref) return ref.id;
  // Loaded only for -j: a command given an id stays as light as before.
  const { jobBuildIdOf } = require('./pipelines') as typeof import('./pipelines');
  return jobBuildIdOf(client, ref.job, ref.number);
}
