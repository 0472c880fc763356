// Every example of docs/plan.md compiles with `causeway compile`, as a user would run it, so
// the plan language's reference cannot drift from what Causeway accepts.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { requireBuiltCli } from './cli-runner';

const BIN = path.resolve(__dirname, '../../bin/causeway');
const DOC = path.resolve(__dirname, '../../docs/plan.md');
/** A block's first line that gives its own arguments; FILE stands for the block's file. */
const ARGS_LINE = /^# causeway compile (.*)$/;

interface Example {
  line: number;
  yaml: string;
}

function examples(markdown: string): Example[] {
  const out: Example[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== '```yaml') continue;
    const start = i + 1;
    while (i + 1 < lines.length && lines[i + 1].trim() !== '```') i++;
    out.push({ line: start + 1, yaml: lines.slice(start, i + 1).join('\n') });
    i++;
  }
  return out;
}

const found = examples(fs.readFileSync(DOC, 'utf8'));
let dir: string;

beforeAll(() => {
  requireBuiltCli();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-plan-doc-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

test('docs/plan.md has an example of every step kind and modifier', () => {
  const all = found.map((e) => e.yaml).join('\n');
  for (const key of [
    'task:',
    'file:',
    'get:',
    'put:',
    'in_parallel:',
    'do:',
    'try:',
    'across:',
    'on_success:',
    'on_failure:',
    'on_abort:',
    'on_error:',
    'ensure:',
    'attempts:',
    'timeout:',
    'tags:',
    'services:',
    'ports:',
    'startup_probe:',
    'caches:',
    'params:',
    'run:',
    'image_resource:',
    'load_var:',
    'resources:',
    'resource_types:',
    'input_mapping:',
    'output_mapping:',
    'container_limits:',
  ]) {
    expect({ key, documented: all.includes(key) }).toEqual({ key, documented: true });
  }
  expect(all).toMatch(/\{name: \w+, number: \d+\}/);
});

test.each(found.map((e) => [e.line, e] as const))('the example at docs/plan.md:%i compiles', async (_line, example) => {
  const file = path.join(dir, `plan-${example.line}.yml`);
  fs.writeFileSync(file, `${example.yaml}\n`);
  const own = ARGS_LINE.exec(example.yaml.split('\n')[0]);
  const args = own ? own[1].split(/\s+/).map((a) => (a === 'FILE' ? file : a)) : [file];
  const { stdout } = await promisify(execFile)(BIN, ['compile', ...args], {
    env: { ...process.env, NO_COLOR: '1' },
  }).catch((err: { stderr?: string; message: string }) => {
    throw new Error(`docs/plan.md:${example.line}: causeway compile ${args.join(' ')} failed:\n${err.stderr ?? err.message}`);
  });
  expect(JSON.parse(stdout)).toHaveProperty('plan.plan.kind', 'do');
});
