// A service's inputs, mapped once for every runtime (as mapInputs does for tasks).
import type { ServiceConfig } from '../../schemas/compiled';
import { ServiceFailed } from '../errors';
import type { MappedInput } from '../runtime/types';
import type { StartServiceRequest } from '../types';

/** The service config's inputs and the artifacts that fill them (its input_mapping applied); an optional one without an artifact is left out. */
export function mapServiceInputs(req: StartServiceRequest, config: ServiceConfig): MappedInput[] {
  const mapped: MappedInput[] = [];
  for (const input of config.inputs) {
    const source = req.spec.inputMapping[input.name] ?? input.name;
    const ref = req.artifacts[source];
    if (!ref) {
      if (input.optional) continue;
      const known = Object.keys(req.artifacts);
      throw new ServiceFailed(
        `service ${req.name}: missing input \`${input.name}\`${source !== input.name ? ` (mapped to \`${source}\`)` : ''}: ` +
          `no earlier step produced it; artifacts available: ${known.join(', ') || 'none'}`,
      );
    }
    mapped.push({ name: input.name, path: input.path ?? input.name, source, ref });
  }
  return mapped;
}
