import { z } from 'zod';
import { loadPlan, varsFromFlags } from '../../schemas';
import { BuildInputSchema, clientJsonSchemas } from '../../schemas/build-input';
import { credsFromWorker } from '../main-helpers';
import { CliError } from '../output';

export async function compile(
  planFile: string | undefined,
  opts: {
    job?: string;
    var: string[];
    yamlVar?: string[];
    loadVarsFrom: string[];
    input: string[];
    output: string[];
    schema?: string;
    credsFromWorker?: boolean;
  },
): Promise<void> {
  if (opts.schema !== undefined) {
    const schemas = clientJsonSchemas();
    if (opts.schema !== 'input' && opts.schema !== 'result') throw new CliError(`--schema ${opts.schema}: expected input or result`);
    process.stdout.write(`${JSON.stringify(schemas[opts.schema], null, 2)}\n`);
    return;
  }
  if (!planFile)
    throw new CliError('compile needs a plan file (or --schema input|result)', 'for example: causeway compile examples/hello.yml');
  const vars = varsFromFlags(opts);
  const plan = loadPlan({ file: planFile, job: opts.job, vars, deferUnsourced: credsFromWorker(opts) });
  const input = BuildInputSchema.safeParse({ plan, uploads: opts.input.map(artifactName), downloads: opts.output.map(artifactName) });
  // The plan compiled, so what fails here is the compiler's output against the workflow's contract.
  if (!input.success)
    throw new CliError(
      `${planFile}: the compiled plan does not match the build input's schema:\n${z.prettifyError(input.error)}`,
      'this is a bug in causeway: please report it with the plan',
    );
  process.stdout.write(`${JSON.stringify(input.data, null, 2)}\n`);
}

/** `run`'s NAME=DIR is accepted too, so the same flags can be pasted. */
function artifactName(flag: string): string {
  return flag.split('=')[0];
}
