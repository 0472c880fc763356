// What Concourse warns of in a pipeline it still sets (atc/configvalidate, atc/step_validator.go):
// names that are not its identifiers, and deprecated fields. `validate-pipeline --strict` fails on them.
import { isPlainObject } from './interpolate';
import type { Path, PlanIssue, Source } from './errors';
import { HOOK_KEYS } from './plan';

// atc/configwarning.go: lowercase letters of any script, digits, `-`, `_`, `.`, starting with a letter or digit.
const VALID_IDENTIFIER = /^[\p{Ll}\p{Lt}\p{Lm}\p{Lo}\d][\p{Ll}\p{Lt}\p{Lm}\p{Lo}\d\-_.]*$/u;
const JUST_NUMBERS = /^\d+$/;
const INVALID_CHARACTER = /[^\p{Ll}\p{Lt}\p{Lm}\p{Lo}\d\-_.]/u;

/** Concourse's `ValidateIdentifier` warning for `name`, or undefined when it is an identifier. */
export function identifierWarning(name: string): string | undefined {
  if (JUST_NUMBERS.test(name)) return `'${name}' is not a valid identifier: cannot be just numbers`;
  if (VALID_IDENTIFIER.test(name)) return undefined;
  const bad = INVALID_CHARACTER.exec([...name].slice(1).join(''));
  const reason = !VALID_IDENTIFIER.test([...name][0])
    ? 'must start with a lowercase letter or a number'
    : `illegal character '${bad?.[0]}'`;
  return `'${name}' is not a valid identifier: ${reason}`;
}

const NAMED_SECTIONS = ['groups', 'resources', 'resource_types', 'prototypes', 'var_sources', 'jobs'] as const;
const NAMED_STEPS = ['get', 'put', 'task', 'set_pipeline', 'load_var'] as const;

/**
 * Concourse's warnings for a pipeline file that compiles, each at its file:line:column, read from
 * the Source compilePipelineSource parsed (so a file is parsed once). A name holding a ((var)) is
 * left alone: Concourse checks it after interpolation, and here its value may be the credential
 * manager's.
 */
export function pipelineWarnings(src: Source): PlanIssue[] {
  // The warnings are taken back out of the Source: they are not problems of the file.
  const start = src.issues.length;
  const root = src.value;
  if (!isPlainObject(root)) return [];
  const checkName = (name: unknown, path: Path) => {
    if (typeof name !== 'string' || name === '' || name.includes('((')) return;
    const warning = identifierWarning(name);
    if (warning) src.add(path, warning);
  };
  for (const section of NAMED_SECTIONS) {
    const list = root[section];
    if (!Array.isArray(list)) continue;
    list.forEach((item, i) => {
      if (!isPlainObject(item)) return;
      checkName(item.name, [section, i, 'name']);
      if (section === 'jobs') {
        if (item.build_logs_to_retain !== undefined)
          src.add([section, i, 'build_logs_to_retain'], 'build_logs_to_retain is deprecated: use build_log_retention instead', {
            key: true,
          });
        steps(item.plan, [section, i, 'plan']);
      }
    });
  }

  function steps(list: unknown, path: Path): void {
    if (Array.isArray(list)) list.forEach((s, i) => step(s, [...path, i]));
  }

  function step(raw: unknown, path: Path): void {
    if (!isPlainObject(raw)) return;
    for (const kind of NAMED_STEPS) {
      if (typeof raw[kind] !== 'string') continue;
      // A task or set_pipeline under across is named by its across vars (atc/configwarning.go skips it).
      if (!((kind === 'task' || kind === 'set_pipeline') && raw.across !== undefined)) checkName(raw[kind], [...path, kind]);
      if (kind === 'task' && raw.image !== undefined && isPlainObject(raw.config) && (raw.config.image_resource ?? raw.config.rootfs_uri))
        src.add(
          [...path, 'image'],
          'specifies image: on the step but also specifies an image under config: - the image: on the step takes precedence',
          { key: true },
        );
    }
    if (raw.hermetic === true)
      src.add([...path, 'hermetic'], '`hermetic:` is not enforced here: the task keeps the network of its runtime', { key: true });
    steps(raw.do, [...path, 'do']);
    if (Array.isArray(raw.in_parallel)) steps(raw.in_parallel, [...path, 'in_parallel']);
    else if (isPlainObject(raw.in_parallel)) steps(raw.in_parallel.steps, [...path, 'in_parallel', 'steps']);
    step(raw.try, [...path, 'try']);
    for (const hook of HOOK_KEYS) step(raw[hook], [...path, hook]);
  }

  return src.issues.splice(start).sort((a, b) => a.line - b.line || a.column - b.column);
}
