// Concourse's `dummy` manager: the vars are in its config. For tests and demos, never secrets.
import { lookupIn } from '../../schemas/interpolate';
import type { SecretLookup, SecretStore } from './types';

export class DummyStore implements SecretStore {
  readonly describe = 'dummy';
  constructor(private readonly vars: Record<string, unknown>) {}

  lookupPaths(team: string, pipeline: string, name: string): string[] {
    return [`${team}/${pipeline}/${name}`, `${team}/${name}`, name];
  }

  async get(path: string): Promise<SecretLookup> {
    // Keys are flat (`main/app/password` or `password`), as Concourse's StaticVariables.
    return lookupIn(this.vars, { path: [path], raw: path });
  }
}
