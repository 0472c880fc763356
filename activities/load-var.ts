import path from 'node:path';
import YAML from 'yaml';
import { PLAN_YAML_OPTIONS } from '../schemas/errors';
import { StepErrored } from './errors';
import type { Runtime } from './runtime/types';
import { artifactFile, readArtifactText } from './step/task-config';
import type { LoadVarRequest } from './types';

/** Reads a load_var file from an artifact (through the runtime) and parses it as Concourse does (format from the extension unless given). */
export async function loadVar(runtime: Pick<Runtime, 'readArtifactFile'>, req: LoadVarRequest): Promise<unknown> {
  const { step } = req;
  const what = `load_var ${step.var}`;
  const text = await readArtifactText(runtime, artifactFile(req.buildId, step.file, req.artifacts, what), what);
  const ext = path.extname(step.file).toLowerCase();
  const format = step.format ?? (ext === '.json' ? 'json' : ext === '.yml' || ext === '.yaml' ? 'yaml' : 'trim');
  try {
    switch (format) {
      case 'json':
        return JSON.parse(text);
      case 'yaml':
      case 'yml':
        return YAML.parse(text, PLAN_YAML_OPTIONS);
      case 'trim':
        return text.trim();
      case 'raw':
        return text;
    }
  } catch (err) {
    throw new StepErrored(`${what}: ${step.file} is not valid ${format}: ${(err as Error).message}`);
  }
}
