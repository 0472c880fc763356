import fs from 'node:fs/promises';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import YAML from 'yaml';
import { safeJoin } from './artifacts';
import { STEP_CONFIG_ERROR } from './deps';
import type { ArtifactRef, LoadVarRequest } from './types';

/** Reads one file of an artifact (`rel` inside it): from the worker's disk, or (kubernetes runtime) from the producer pod. */
export type ArtifactFileReader = (ref: ArtifactRef, artifact: string, rel: string) => Promise<string>;

const readFromDisk: ArtifactFileReader = (ref, _artifact, rel) => fs.readFile(safeJoin(ref.path, rel), 'utf8');

/** Reads a load_var file from an artifact and parses it as Concourse does (format from the extension unless given). */
export async function loadVar(req: LoadVarRequest, read: ArtifactFileReader = readFromDisk): Promise<unknown> {
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
    text = await read(ref, artifact, rest.join('/'));
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
