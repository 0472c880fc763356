import fs from 'node:fs';
import path from 'node:path';
import { nameProblem } from '../schemas/checks';
import { CliError } from './output';

// Apart from cli/transfer.ts so checking the flags does not load the artifact store (tar, the object store).

/** `name=dir` flags of -i / -o, checked before anything is submitted. */
export function parseArtifactFlags(flags: string[], flag: '-i' | '-o'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of flags) {
    const m = /^([A-Za-z0-9_.-]+)=(.+)$/.exec(f);
    if (!m) throw new CliError(`${flag} needs name=dir, got \`${f}\``, `for example: ${flag} repo=.`);
    const bad = nameProblem(m[1]);
    if (bad) throw new CliError(`${flag} ${f}: ${bad}`, `for example: ${flag} repo=.`);
    if (out[m[1]]) throw new CliError(`${flag} ${m[1]} is given twice`);
    out[m[1]] = path.resolve(m[2]);
  }
  if (flag === '-i') {
    for (const [name, dir] of Object.entries(out)) {
      if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new CliError(`-i ${name}=${dir}: not a directory`);
    }
  } else {
    for (const [name, dir] of Object.entries(out)) {
      // Unpacking an artifact over the root of the filesystem is never meant (and tar refuses it entry by entry).
      if (dir === path.parse(dir).root)
        throw new CliError(
          `-o ${name}=${dir}: will not write an output over the filesystem's root`,
          `name a directory: -o ${name}=./${name}`,
        );
      if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) throw new CliError(`-o ${name}=${dir}: exists and is not a directory`);
    }
  }
  return out;
}
