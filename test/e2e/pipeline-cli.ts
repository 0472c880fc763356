// What the pipeline e2e tests read back through the CLI (`causeway jobs --json`), and the
// resource types they write as Node scripts.
import { waitFor } from '../workflows/harness';
import type { CliResult } from './cli-runner';

export interface JobRow {
  name: string;
  paused: boolean;
  builds: { number: number; status: string; id: string }[];
}

export function pipelineReader(cli: (...args: string[]) => Promise<CliResult>) {
  const jobs = async (pipeline: string): Promise<Record<string, JobRow>> => {
    const r = await cli('jobs', '-p', pipeline, '--json');
    expect(r.code).toBe(0);
    return Object.fromEntries((JSON.parse(r.stdout) as JobRow[]).map((j) => [j.name, j]));
  };
  return {
    jobs,
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
