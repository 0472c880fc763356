// resource_types' `defaults`, as Concourse's Source.Merge: each resource of the type gets them
// under its own source (its keys win, shallowly), refs and all. Pure compile, no server.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { compilePipeline } from '../../schemas/pipeline';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-defaults-'));
for (const exe of ['check', 'in', 'out']) fs.writeFileSync(path.join(dir, exe), '#!/bin/sh\n', { mode: 0o755 });
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const compile = (text: string, vars: Record<string, unknown> = {}) => compilePipeline({ name: 'p', text, file: 'ci/p.yml', vars });

describe('resource_types defaults', () => {
  it('merge under each resource source of the type, the resource winning', () => {
    const config = compile(
      `
resource_types:
- name: defaulted-type
  type: directory
  source: {path: ${dir}}
  defaults: {log: defaulted, nested: {a: 1}, token: ((token))}
resources:
- {name: plain, type: defaulted-type, source: {initial_version: ((hash))}}
- {name: overriding, type: defaulted-type, source: {log: mine, nested: {b: 2}}}
- {name: bare, type: defaulted-type}
jobs:
- name: j
  plan: [{get: plain}, {get: overriding}, {get: bare}]
`,
      { hash: 'abc' },
    );
    const source = (name: string) => config.resources.find((r) => r.name === name)!.ref.source;
    expect(source('plain')).toEqual({ log: 'defaulted', nested: { a: 1 }, token: '((token))', initial_version: 'abc' });
    expect(source('overriding')).toEqual({ log: 'mine', nested: { b: 2 }, token: '((token))' });
    expect(source('bare')).toEqual({ log: 'defaulted', nested: { a: 1 }, token: '((token))' });
    expect(config.resources.find((r) => r.name === 'bare')!.ref.deferredVars).toEqual([
      { ref: 'token', at: 'ci/p.yml:6:53: resource_types[0].defaults.token' },
    ]);
  });

  it('refuse defaults that are not a map', () => {
    expect(() =>
      compile(`
resource_types:
- {name: t, type: registry-image, source: {repository: x}, defaults: [1]}
resources:
- {name: r, type: t}
jobs:
- {name: j, plan: [{get: r}]}
`),
    ).toThrow(/resource_types\[0\]\.defaults/);
  });

  it('apply to a type that mirrors mock (testflight resource-type-defaults.yml): it runs as the base type mock', () => {
    const text = fs.readFileSync(path.join(__dirname, '../fixtures/testflight/resource-type-defaults.yml'), 'utf8');
    const ref = compile(text, { hash: 'abc' }).resources[0].ref;
    expect(ref.type).toMatchObject({ kind: 'host', name: 'mock', base: true });
    expect(ref.source).toEqual({ log: 'defaulted', initial_version: 'abc' });
  });
});

describe('resource_types built from mock', () => {
  const typeOf = (entry: string) =>
    compile(`
resource_types:
- ${entry}
resources:
- {name: r, type: t}
jobs:
- {name: j, plan: [{get: r}]}
`).resources[0].ref.type;

  it('are mock when their image is mock mirroring itself (source mirror_self, or params mirror_self_via_params)', () => {
    expect(typeOf('{name: t, type: mock, source: {mirror_self: true}}')).toMatchObject({ kind: 'host', name: 'mock', base: true });
    // testflight resource-types-with-params.yml
    expect(typeOf('{name: t, type: mock, source: {initial_version: x}, params: {mirror_self_via_params: true}}')).toMatchObject({
      kind: 'host',
      name: 'mock',
    });
  });

  it('stay image types otherwise (a mock version is no image: the step errors when it runs)', () => {
    expect(typeOf('{name: t, type: mock, source: {initial_version: x}}')).toMatchObject({ kind: 'image', type: 'mock' });
  });
});
