import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { newBuildId } from '../../common/build-client';
import { loadVarFiles, parseTaskConfig, parseVarFlags, type CompiledPlan, type TaskConfig } from '../../schemas';
import { openSession } from '../connect';
import { submitAndFollow } from '../follow';
import { collect, exitWith } from '../main-helpers';
import { CliError } from '../output';
import { parseArtifactFlags } from '../transfer';

export function registerExecute(program: Command): void {
  program
    .command('execute')
    .description('run one task file with local directories as inputs, as `fly execute` does')
    .argument('[args...]', "after --: appended to the task's run.args, as `fly execute -- ARGS`")
    .requiredOption('-c, --config <task.yml>', 'the task config file')
    .option('-i, --input <name=dir>', 'upload a directory as input NAME; repeatable (default: . for a single-input task)', collect, [])
    .option('-o, --output <name=dir>', 'download output NAME into a directory; repeatable', collect, [])
    .option('-v, --var <name=value>', 'set a ((var)) in the task file; repeatable', collect, [])
    .option('-l, --load-vars-from <file>', 'load ((vars)) from a YAML file; repeatable', collect, [])
    .addHelpText(
      'after',
      `
Inputs in a git work tree upload its tracked and unignored files; other directories
upload everything. Params the task file leaves empty (\`KEY:\` or \`KEY: ""\`) take the
value of the caller's environment variable KEY, as fly execute does. Ctrl-C or SIGTERM
aborts the build. Exit status: 0 succeeded, 1 failed, 2 errored, 3 aborted.

Examples:
  causeway execute -c ci/unit.yml
  causeway execute -c ci/build.yml -i repo=. -o dist=./out
  causeway execute -c ci/test.yml -- -run TestLogin`,
    )
    .action(async (args: string[], opts: { config: string; input: string[]; output: string[]; var: string[]; loadVarsFrom: string[] }) => {
      const vars = { ...loadVarFiles(opts.loadVarsFrom), ...parseVarFlags(opts.var) };
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
    });
}

/** What `fly execute` adds to a task file: `-- ARGS` after run.args, and empty params from the caller's environment. */
export function withCallerArgsAndEnv(config: TaskConfig, args: string[], env: NodeJS.ProcessEnv): TaskConfig {
  const params = Object.fromEntries(Object.entries(config.params).map(([k, v]) => [k, v === '' ? (env[k] ?? '') : v]));
  return { ...config, params, run: { ...config.run, args: [...config.run.args, ...args] } };
}
