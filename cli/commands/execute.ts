import path from 'node:path';
import { newBuildId } from '../../common/build-client';
import { parseTaskConfig, varsFromFlags, type CompiledPlan, type TaskConfig } from '../../schemas';
import type { GetStep, ImageResource, Step } from '../../schemas/compiled';
import { openSession } from '../connect';
import { submitAndFollow } from '../follow';
import { credsFromWorker, exitWith } from '../main-helpers';
import { CliError } from '../output';
import { parseArtifactFlags } from '../artifact-flags';
import { readYamlFile } from '../../schemas/checks';

export async function execute(
  args: string[],
  opts: {
    config: string;
    input: string[];
    output: string[];
    var: string[];
    yamlVar?: string[];
    loadVarsFrom: string[];
    inputsFrom?: string;
    inputMapping?: string[];
    image?: string;
    credsFromWorker?: boolean;
    privileged?: boolean;
    tag?: string[];
    includeIgnored?: boolean;
    background?: boolean;
  },
): Promise<void> {
  if (opts.image !== undefined && !opts.inputsFrom)
    throw new CliError(
      `--image ${opts.image}: must set --inputs-from when using --image, so causeway knows which job to look up the image`,
      `name the job whose input it is: -j PIPELINE/JOB --image ${opts.image}`,
    );
  const vars = varsFromFlags(opts);
  let text: string;
  try {
    // Strict UTF-8 and bounded, as a plan file (it was read as 'utf8': bad bytes became U+FFFD).
    text = readYamlFile(opts.config);
  } catch (err) {
    if ((err as Error).name === 'PlanError') throw err;
    throw new CliError(`cannot read task config ${opts.config}: ${(err as Error).message}`);
  }
  // As fly execute's one-off build, whose ((vars)) the ATC's credential manager resolves.
  const credentials = { varSources: new Set<string>(), deferUnsourced: credsFromWorker(opts) };
  let config = withCallerArgsAndEnv(parseTaskConfig({ text, file: opts.config, vars, credentials }), args, process.env);
  const inputs = parseArtifactFlags(opts.input, '-i');
  const mapping = parseInputMapping(opts.inputMapping ?? [], config, opts.inputsFrom);
  const required = config.inputs.filter((i) => !i.optional).map((i) => i.name);
  const needs = (missing: string[]) =>
    new CliError(
      `the task needs input${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`,
      missing.map((n) => `-i ${n}=DIR`).join(' ') + (opts.inputsFrom ? `, or a get of job ${opts.inputsFrom} (map one with -m)` : ''),
    );
  if (!opts.inputsFrom) {
    if (opts.input.length === 0 && config.inputs.length === 1) inputs[config.inputs[0].name] = process.cwd();
    const missing = required.filter((n) => !inputs[n]);
    if (missing.length > 0) throw needs(missing);
  }
  const outputs = parseArtifactFlags(opts.output, '-o');
  if (opts.background && Object.keys(outputs).length > 0)
    throw new CliError('-b starts the build and exits, so it cannot fetch outputs (-o)', 'drop -b to wait for the outputs, or drop -o');
  const unknown = Object.keys(outputs).filter((n) => !config.outputs.some((o) => o.name === n));
  if (unknown.length > 0)
    throw new CliError(
      `the task has no output ${unknown.join(', ')}`,
      `its outputs: ${config.outputs.map((o) => o.name).join(', ') || 'none'}`,
    );
  const name = path.basename(opts.config).replace(/\.ya?ml$/, '');
  const session = await openSession({ autoStart: true });
  try {
    // fly execute -j: inputs not uploaded are the job's gets, at the versions its next build would get.
    const gets = new Map<string, GetStep>();
    const inputMapping: Record<string, string> = {};
    if (opts.inputsFrom) {
      // Loaded only for -j: execute without it stays as light as before.
      const { nextBuildGets } = require('./pipelines') as typeof import('./pipelines');
      const from = await nextBuildGets(session.client, opts.inputsFrom);
      if (opts.image !== undefined) config = { ...config, image_resource: imageOfInput(from, opts.image) };
      for (const input of config.inputs) {
        if (inputs[input.name]) continue;
        const artifact = mapping[input.name] ?? input.name;
        const get = from.gets.get(artifact);
        if (!get) continue;
        gets.set(artifact, get);
        if (artifact !== input.name) inputMapping[input.name] = artifact;
      }
      const missing = required.filter((n) => !inputs[n] && !gets.has(mapping[n] ?? n));
      if (missing.length > 0) throw needs(missing);
    }
    const tags = opts.tag?.length ? { tags: opts.tag } : {};
    const steps: Step[] = [...gets.values()].map((get, i) => ({ ...get, id: `plan.${i}`, line: undefined, hooks: undefined, ...tags }));
    steps.push({
      kind: 'task',
      id: `plan.${steps.length}`,
      task: name,
      config,
      params: {},
      vars: {},
      inputMapping,
      outputMapping: {},
      privileged: opts.privileged ?? false,
      ...tags,
    });
    const plan: CompiledPlan = { name: `execute-${name}`, source: opts.config, plan: { kind: 'do', id: 'plan', steps } };
    exitWith(
      await submitAndFollow(session, {
        plan,
        buildId: newBuildId(),
        inputs,
        outputs,
        detach: opts.background ?? false,
        includeIgnored: opts.includeIgnored,
      }),
    );
  } finally {
    await session.close();
  }
}

/**
 * `--image NAME` (fly's): the job's input NAME as the task's image_resource, at the version the
 * job's next build would get (Concourse's FetchImageResourceFromJobInputs).
 */
function imageOfInput(from: { job: string; gets: Map<string, GetStep> }, name: string): ImageResource {
  const get = from.gets.get(name);
  if (!get)
    throw new CliError(
      `--image ${name}: image resource ${name} not found: job ${from.job} has no input ${name}`,
      `its inputs: ${[...from.gets.keys()].join(', ') || 'none'}`,
    );
  const version = typeof get.version === 'object' ? { version: get.version } : {};
  const params = Object.keys(get.params).length > 0 ? { params: get.params } : {};
  return { type: get.resource.type.name, source: get.resource.source, ...version, ...params };
}

/** `-m TASK_INPUT=JOB_INPUT` (fly's --input-mapping): which of the job's inputs a task input takes. */
function parseInputMapping(flags: string[], config: TaskConfig, inputsFrom: string | undefined): Record<string, string> {
  if (flags.length > 0 && !inputsFrom) throw new CliError('-m maps task inputs to the inputs of a job: give the job with -j PIPELINE/JOB');
  const out: Record<string, string> = {};
  for (const f of flags) {
    const m = /^([^=]+)=(.+)$/.exec(f);
    if (!m) throw new CliError(`-m needs TASK_INPUT=JOB_INPUT, got \`${f}\``, 'for example: -m source=repo');
    if (!config.inputs.some((i) => i.name === m[1]))
      throw new CliError(`-m ${f}: the task has no input ${m[1]}`, `its inputs: ${config.inputs.map((i) => i.name).join(', ') || 'none'}`);
    out[m[1]] = m[2];
  }
  return out;
}

/** What `fly execute` adds to a task file: `-- ARGS` after run.args, and empty params from the caller's environment. */
export function withCallerArgsAndEnv(config: TaskConfig, args: string[], env: NodeJS.ProcessEnv): TaskConfig {
  const params = Object.fromEntries(Object.entries(config.params).map(([k, v]) => [k, v === '' ? (env[k] ?? '') : v]));
  return { ...config, params, run: { ...config.run, args: [...config.run.args, ...args] } };
}
