import fs from 'node:fs';
import path from 'node:path';
import { newBuildId } from '../../common/build-client';
import { parseTaskConfig, varsFromFlags, type CompiledPlan, type TaskConfig } from '../../schemas';
import { openSession } from '../connect';
import { submitAndFollow } from '../follow';
import { exitWith } from '../main-helpers';
import { CliError } from '../output';
import { parseArtifactFlags } from '../artifact-flags';

export async function execute(
  args: string[],
  opts: { config: string; input: string[]; output: string[]; var: string[]; yamlVar?: string[]; loadVarsFrom: string[] },
): Promise<void> {
  const vars = varsFromFlags(opts);
  let text: string;
  try {
    text = fs.readFileSync(opts.config, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read task config ${opts.config}: ${(err as Error).message}`);
  }
  const config = withCallerArgsAndEnv(parseTaskConfig({ text, file: opts.config, vars }), args, process.env);
  const inputs = parseArtifactFlags(opts.input, '-i');
  const required = config.inputs.filter((i) => !i.optional).map((i) => i.name);
  if (opts.input.length === 0 && config.inputs.length === 1) inputs[config.inputs[0].name] = process.cwd();
  const missing = required.filter((n) => !inputs[n]);
  if (missing.length > 0) {
    throw new CliError(
      `the task needs input${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`,
      missing.map((n) => `-i ${n}=DIR`).join(' '),
    );
  }
  const outputs = parseArtifactFlags(opts.output, '-o');
  const unknown = Object.keys(outputs).filter((n) => !config.outputs.some((o) => o.name === n));
  if (unknown.length > 0)
    throw new CliError(
      `the task has no output ${unknown.join(', ')}`,
      `its outputs: ${config.outputs.map((o) => o.name).join(', ') || 'none'}`,
    );
  const name = path.basename(opts.config).replace(/\.ya?ml$/, '');
  const plan: CompiledPlan = {
    name: `execute-${name}`,
    source: opts.config,
    plan: {
      kind: 'do',
      id: 'plan',
      steps: [
        {
          kind: 'task',
          id: 'plan.0',
          task: name,
          config,
          params: {},
          vars: {},
          inputMapping: {},
          outputMapping: {},
          privileged: false,
        },
      ],
    },
  };
  const session = await openSession({ autoStart: true });
  try {
    exitWith(await submitAndFollow(session, { plan, buildId: newBuildId(), inputs, outputs, detach: false }));
  } finally {
    await session.close();
  }
}

/** What `fly execute` adds to a task file: `-- ARGS` after run.args, and empty params from the caller's environment. */
export function withCallerArgsAndEnv(config: TaskConfig, args: string[], env: NodeJS.ProcessEnv): TaskConfig {
  const params = Object.fromEntries(Object.entries(config.params).map(([k, v]) => [k, v === '' ? (env[k] ?? '') : v]));
  return { ...config, params, run: { ...config.run, args: [...config.run.args, ...args] } };
}
