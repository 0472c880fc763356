import { newBuildId } from '../../common/build-client';
import { loadPlan, varsFromFlags } from '../../schemas';
import { unusedArtifactFlags } from '../../schemas/checks';
import { openSession } from '../connect';
import { submitAndFollow } from '../follow';
import { credsFromWorker, exitWith } from '../main-helpers';
import { CliError } from '../output';
import { parseArtifactFlags } from '../artifact-flags';

export interface RunOptions {
  job?: string;
  var: string[];
  yamlVar?: string[];
  loadVarsFrom: string[];
  input: string[];
  output: string[];
  detach?: boolean;
  json?: boolean;
  services?: boolean;
  credsFromWorker?: boolean;
}

/** `causeway run`: cli/specs/run.ts defines its flags. */
export async function run(planFile: string, opts: RunOptions): Promise<void> {
  if (opts.json && !opts.detach) throw new CliError('--json goes with --detach', 'add --detach, or drop --json to follow the build');
  const vars = varsFromFlags(opts);
  const plan = loadPlan({ file: planFile, job: opts.job, vars, deferUnsourced: credsFromWorker(opts) });
  const inputs = parseArtifactFlags(opts.input, '-i');
  const outputs = parseArtifactFlags(opts.output, '-o');
  const unused = unusedArtifactFlags(plan, Object.keys(inputs), Object.keys(outputs));
  if (unused?.length)
    throw new CliError(
      unused.join('\n'),
      'check the names against the plan’s task inputs and outputs (after input_mapping/output_mapping)',
    );
  const session = await openSession({ autoStart: true });
  try {
    exitWith(
      await submitAndFollow(session, {
        plan,
        buildId: newBuildId(),
        inputs,
        outputs,
        detach: Boolean(opts.detach),
        json: Boolean(opts.json),
        showServices: opts.services !== false,
      }),
    );
  } finally {
    await session.close();
  }
}
