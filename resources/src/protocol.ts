// The Concourse resource protocol as our base types speak it: the request on stdin, the
// response on stdout, everything for humans on stderr, a non-zero exit on error.
import { z } from 'zod';

export type Version = Record<string, string>;
export type Metadata = { name: string; value: string }[];

export const VersionSchema = z.record(z.string(), z.string());

/** Thrown for a problem the user must fix: printed without a stack trace. */
export class ResourceError extends Error {}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export interface Handlers<S> {
  check(source: S, version: Version | null): Promise<Version[]>;
  in(source: S, version: Version, params: unknown, dest: string): Promise<{ version: Version; metadata: Metadata }>;
  out(source: S, params: unknown, dir: string): Promise<{ version: Version; metadata: Metadata }>;
}

const RequestSchema = z.object({
  source: z.unknown().optional(),
  version: VersionSchema.nullable().optional(),
  params: z.unknown().optional(),
});

/** Runs the script named by argv[2] (check, in, out) with `source` parsed by `sourceSchema`. */
export function main<S>(type: string, sourceSchema: z.ZodType<S>, handlers: Handlers<S>): void {
  const [script, dir] = process.argv.slice(2);
  const run = async () => {
    const request = RequestSchema.parse(JSON.parse((await readStdin()) || '{}'));
    const parsed = sourceSchema.safeParse(request.source ?? {});
    if (!parsed.success) {
      throw new ResourceError(
        `invalid source: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'source'}: ${i.message}`).join('; ')}`,
      );
    }
    const source = parsed.data;
    switch (script) {
      case 'check':
        return handlers.check(source, request.version ?? null);
      case 'in':
        if (!request.version) throw new ResourceError('in needs a version');
        if (!dir) throw new ResourceError('in needs the destination directory as its argument');
        return handlers.in(source, request.version, request.params ?? {}, dir);
      case 'out':
        if (!dir) throw new ResourceError('out needs the sources directory as its argument');
        return handlers.out(source, request.params ?? {}, dir);
      default:
        throw new ResourceError(`unknown script \`${script}\`: expected check, in or out`);
    }
  };
  run().then(
    (response) => process.stdout.write(`${JSON.stringify(response)}\n`),
    (err: unknown) => {
      process.stderr.write(
        `${type} resource: ${err instanceof ResourceError || err instanceof z.ZodError ? (err as Error).message : ((err as Error).stack ?? String(err))}\n`,
      );
      process.exitCode = 1;
    },
  );
}
