import fs from 'node:fs/promises';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import YAML from 'yaml';
import { safeJoin } from './artifacts';
import { STEP_CONFIG_ERROR } from './deps';
import type { LoadVarRequest } from './types';

/** Reads a load_var file from an artifact and parses it as Concourse does (format from the extension unless given). */
export async function loadVar(req: LoadVarRequest): Promise<unknown> {
  const { step } = req;
  const fail = (message: string) =>
    ApplicationFailure.create({ type: STEP_CONFIG_ERROR, message: `load_var ${step.var}: ${message}`, nonRetryable: true });
  const [artifact, ...rest] = step.file.split('/');
  const ref = req.artifacts[artifact];
  if (!ref || rest.length === 0) {
    throw fail(`file ${step.file}: the first part of the path must name an artifact (available: ${Object.keys(req.artifacts).join(', ') || 'none'})`);
  }
  let text: string;
  try {
    text = await fs.readFile(safeJoin(ref.path, rest.join('/')), 'utf8');
  } catch (err) {
    throw fail(`cannot read ${step.file}: ${(err as Error).message}`);
  }
  const ext = path.extname(step.file).toLowerCase();
  const format = step.format ?? (ext === '.json' ? 'json' : ext === '.yml' || ext === '.yaml' ? 'yaml' : 'trim');
  try {
    switch (format) {
      case 'json':
        return JSON.parse(text);
      case 'yaml':
      case 'yml':
        return YAML.parse(text);
      case 'trim':
        return text.trim();
      case 'raw':
        return text;
    }
  } catch (err) {
    throw fail(`${step.file} is not valid ${format}: ${(err as Error).message}`);
  }
}
