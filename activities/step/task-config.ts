// A task's config, resolved once for every runtime as Concourse's task_config_source.go chains
// it: the file from its artifact (read by the runtime) -> the step's inline config over it ->
// ((vars)) of the step and validation (parseTaskConfig) -> ((.svc:...)) of the step's services.
// Then its inputs, mapped to the artifacts that fill them (a missing one errors the step).
import { interpolateServices, type ServiceAddress } from '../../common/services';
import { parseTaskConfig } from '../../schemas';
import { MAX_YAML_BYTES } from '../../schemas/errors';
import { asStrings, type CredentialResolver } from '../creds';
import type { TaskConfig, TaskStep } from '../../schemas/compiled';
import { stringifyVar, type VarRef } from '../../schemas/interpolate';
import { StepErrored } from '../errors';
import type { ArtifactFile, MappedInput, Runtime } from '../runtime/types';
import type { Artifacts } from '../types';

/** `file: <artifact>/<path>` → the artifact and the path inside it, or StepErrored naming the artifacts there are. */
export function artifactFile(buildId: string, file: string, artifacts: Artifacts, what: string): ArtifactFile {
  const [artifact, ...rest] = file.split('/');
  const ref = artifacts[artifact];
  const rel = rest.join('/');
  if (!ref || rel === '') {
    throw new StepErrored(
      `${what}: file ${file}: the first part of the path must name an artifact (available: ${Object.keys(artifacts).join(', ') || 'none'})`,
    );
  }
  return { buildId, artifact, ref, rel };
}

/**
 * One file of an artifact as text, through the runtime; a failure that is not already StepErrored
 * is worded here. Every runtime's file is read here, no further than a plan file may be: a step
 * can write gigabytes into its output, which must not fill the worker's memory.
 */
export async function readArtifactText(runtime: Pick<Runtime, 'readArtifactFile'>, file: ArtifactFile, what: string): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of await runtime.readArtifactFile(file, what)) {
      chunks.push(chunk as Buffer);
      total += (chunk as Buffer).length;
      if (total > MAX_YAML_BYTES) {
        throw new StepErrored(
          `${what}: ${file.artifact}/${file.rel} is larger than ${MAX_YAML_BYTES.toLocaleString('en-US')} bytes (4 MB), the most a file a step reads from an artifact may be (as a plan file): is it the file you meant?`,
          'FileTooLarge',
        );
      }
    }
  } catch (err) {
    if (err instanceof StepErrored) throw err;
    throw new StepErrored(`${what}: cannot read ${file.artifact}/${file.rel}: ${(err as Error).message}`);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The step's credential refs (in params, vars and config) resolved from its var sources and
 * the worker's manager, each value tracked for redaction; a ref found nowhere errors the step.
 */
export async function withCredentials(step: TaskStep, creds: CredentialResolver): Promise<TaskStep> {
  const { value, missing } = await creds.interpolate({ params: step.params, vars: step.vars, config: step.config });
  throwMissing(`task ${step.task}`, missing, creds);
  return { ...step, params: asStrings(value.params), vars: value.vars, config: value.config && configStrings(value.config) };
}

function throwMissing(what: string, missing: VarRef[], creds: CredentialResolver): void {
  if (missing.length === 0) return;
  const seen = [...new Map(missing.map((r) => [r.raw, r])).values()];
  throw new StepErrored(seen.map((r) => `${what}: undefined var \`${r.raw}\`: ${creds.explain(r)}`).join('\n'), 'UndefinedVar');
}

// A credential that is a map or a number, standing alone where a task wants text, becomes text.
function configStrings(config: TaskConfig): TaskConfig {
  const run = { ...config.run, path: stringifyVar(config.run.path), args: asStrings(config.run.args) };
  return { ...config, params: asStrings(config.params), run };
}

export async function resolveTaskConfig(
  runtime: Pick<Runtime, 'readArtifactFile'>,
  buildId: string,
  step: TaskStep,
  artifacts: Artifacts,
  services: Record<string, ServiceAddress> | undefined,
  creds: CredentialResolver,
): Promise<TaskConfig> {
  const what = `task ${step.task}`;
  let config: TaskConfig;
  if (step.file) {
    const text = await readArtifactText(runtime, artifactFile(buildId, step.file, artifacts, what), `${what}: file ${step.file}`);
    let fromFile: TaskConfig;
    try {
      fromFile = parseTaskConfig({ text, file: step.file, vars: step.vars, credentials: creds.deferring });
    } catch (err) {
      throw new StepErrored(`${what}: ${(err as Error).message}`);
    }
    // The file's own credential refs (Concourse resolves them like the step's).
    const resolved = await creds.interpolate(fromFile);
    throwMissing(`${what}: file ${step.file}`, resolved.missing, creds);
    fromFile = configStrings(resolved.value);
    config = step.config ? { ...fromFile, ...step.config } : fromFile;
  } else if (step.config) {
    config = step.config;
  } else {
    throw new StepErrored(`${what}: neither config nor file is set`);
  }
  if (!services) return config;
  try {
    return interpolateServices(config, services);
  } catch (err) {
    throw new StepErrored(`${what}: ${(err as Error).message}`);
  }
}

/** The config's inputs and the artifacts that fill them (input_mapping applied); an optional one without an artifact is left out. */
export function mapInputs(step: TaskStep, config: TaskConfig, artifacts: Artifacts): MappedInput[] {
  const mapped: MappedInput[] = [];
  for (const input of config.inputs) {
    const source = step.inputMapping[input.name] ?? input.name;
    const ref = artifacts[source];
    if (!ref) {
      if (input.optional) continue;
      const known = Object.keys(artifacts);
      throw new StepErrored(
        `task ${step.task}: missing input \`${input.name}\`${source !== input.name ? ` (mapped to \`${source}\`)` : ''}: ` +
          `no earlier step produced it${known.length ? `; artifacts available: ${known.join(', ')}` : '; no artifacts exist yet'}` +
          ` (pass one with -i ${source}=DIR or add an output named ${source} to an earlier task)`,
        'MissingInput',
      );
    }
    mapped.push({ name: input.name, path: input.path ?? input.name, source, ref });
  }
  return mapped;
}
