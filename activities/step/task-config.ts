// A task's config, resolved once for every runtime as Concourse's task_config_source.go chains
// it: the file from its artifact (read by the runtime) -> the step's inline config over it ->
// ((vars)) of the step and validation (parseTaskConfig) -> ((.svc:...)) of the step's services.
// Then its inputs, mapped to the artifacts that fill them (a missing one errors the step).
import { interpolateServices, type ServiceAddress } from '../../common/services';
import { parseTaskConfig } from '../../schemas';
import type { TaskConfig, TaskStep } from '../../schemas/compiled';
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

/** One file of an artifact as text, through the runtime; a failure that is not already StepErrored is worded here. */
export async function readArtifactText(runtime: Pick<Runtime, 'readArtifactFile'>, file: ArtifactFile, what: string): Promise<string> {
  try {
    return await runtime.readArtifactFile(file, what);
  } catch (err) {
    if (err instanceof StepErrored) throw err;
    throw new StepErrored(`${what}: cannot read ${file.artifact}/${file.rel}: ${(err as Error).message}`);
  }
}

export async function resolveTaskConfig(
  runtime: Pick<Runtime, 'readArtifactFile'>,
  buildId: string,
  step: TaskStep,
  artifacts: Artifacts,
  services: Record<string, ServiceAddress> | undefined,
): Promise<TaskConfig> {
  const what = `task ${step.task}`;
  let config: TaskConfig;
  if (step.file) {
    const text = await readArtifactText(runtime, artifactFile(buildId, step.file, artifacts, what), `${what}: file ${step.file}`);
    try {
      const fromFile = parseTaskConfig({ text, file: step.file, vars: step.vars });
      config = step.config ? { ...fromFile, ...step.config } : fromFile;
    } catch (err) {
      throw new StepErrored(`${what}: ${(err as Error).message}`);
    }
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
