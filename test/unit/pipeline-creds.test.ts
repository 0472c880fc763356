// Credential refs in a pipeline, as fly's set-pipeline leaves them: what -v/-l do not give stays
// a ref in resources' and resource types' sources and in get/put params (with where the file
// has it), and a check resolves a source's refs in its activity, redacting their values from its
// errors. Real check processes, no server.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DummyStore } from '../../activities/creds/dummy';
import { credentialRefsNote } from '../../common/pipeline-set';
import { pipelineActivities } from '../../activities/pipeline';
import type { GetStep, PutStep, ResourceRef } from '../../schemas/compiled';
import { PlanError } from '../../schemas/errors';
import { compilePipeline } from '../../schemas/pipeline';

const FIXTURE = path.resolve(__dirname, '../fixtures/concourse/var-sources.yml');

const compile = (text: string, vars: Record<string, unknown> = {}) => compilePipeline({ name: 'p', text, file: 'ci/p.yml', vars });

function pipelineError(text: string): string[] {
  try {
    compile(text);
  } catch (err) {
    if (err instanceof PlanError) return err.message.split('\n');
    throw err;
  }
  throw new Error('compiled');
}

const PIPELINE = `resource_types:
- name: img-type
  type: registry-image
  source: {repository: example/type, password: ((registry-password))}
resources:
- name: repo
  type: git
  source: {uri: ((uri)), private_key: ((git-key)), branch: ((branch))}
- name: image
  type: img-type
  source: {tag: latest}
jobs:
- name: build
  plan:
  - get: repo
    params: {token: ((get-token))}
  - get: image
  - put: repo
    params: {repository: repo, password: ((vs:push-password))}
    get_params: {depth: ((depth))}
var_sources:
- {name: vs, type: dummy, config: {vars: {}}}
`;

describe('set-pipeline keeps credential refs', () => {
  it('leaves refs -v/-l do not give in sources and get/put params, fills the static ones, and records where each is', () => {
    const config = compile(PIPELINE, { uri: 'file:///repo', branch: 'main' });
    const repo = config.resources.find((r) => r.name === 'repo')!.ref;
    expect(repo.source).toEqual({ uri: 'file:///repo', private_key: '((git-key))', branch: 'main' });
    expect(repo.deferredVars).toEqual([{ ref: 'git-key', at: 'ci/p.yml:8:39: resources[0].source.private_key' }]);
    const image = config.resources.find((r) => r.name === 'image')!.ref;
    expect(image.type).toMatchObject({ kind: 'image', source: { repository: 'example/type', password: '((registry-password))' } });
    expect(image.deferredVars).toEqual([{ ref: 'registry-password', at: 'ci/p.yml:4:48: resource_types[0].source.password' }]);
    expect(config.varSources).toEqual([{ name: 'vs', type: 'dummy', config: { vars: {} } }]);

    const plan = config.jobs[0].plan;
    const [get, , put] = plan.plan.steps as [GetStep, GetStep, PutStep];
    expect(get.params).toEqual({ token: '((get-token))' });
    expect(put.params).toEqual({ repository: 'repo', password: '((vs:push-password))' });
    expect(put.getParams).toEqual({ depth: '((depth))' });
    // The build checks every ref its steps and their resources use before its first step.
    expect(plan.deferredVars?.map((d) => d.ref).sort()).toEqual(
      ['depth', 'get-token', 'git-key', 'registry-password', 'vs:push-password'].sort(),
    );
    expect(plan.deferredVars).toContainEqual({ ref: 'get-token', at: 'ci/p.yml:16:21: jobs[0].plan[0].params.token' });
  });

  it('says which refs it leaves for the workers, each once', () => {
    expect(credentialRefsNote(compile(PIPELINE, { uri: 'u', branch: 'main' }))).toBe(
      'credential refs the workers resolve when a check or build runs: ((git-key)), ((registry-password)), ((get-token)), ((vs:push-password)), ((depth))',
    );
    expect(credentialRefsNote(compile('jobs: [{name: j, plan: []}]\n'))).toBeUndefined();
  });

  it("sets testflight's var-sources.yml: its ((vs:...)) refs stay for the pipeline's own var source", () => {
    const config = compilePipeline({ name: 'vs', text: fs.readFileSync(FIXTURE, 'utf8'), file: FIXTURE });
    const resource = config.resources[0].ref;
    expect(resource.source).toEqual({
      initial_version: '((vs:initial_version_var))',
      create_files: { some_file: '((vs:some_numeric_var))' },
    });
    expect(resource.deferredVars?.map((d) => d.ref)).toEqual(['vs:initial_version_var', 'vs:some_numeric_var']);
    expect(config.varSources?.[0]).toMatchObject({ name: 'vs', type: 'dummy' });
  });

  it('still needs static values where the pipeline itself reads them', () => {
    expect(
      pipelineError(`resource_types:
- {name: d, type: directory, source: {path: ((dir))}}
resources:
- {name: r, type: d, check_every: ((every))}
jobs:
- name: j
  plan: [{get: r}, {task: t, file: r/((vs:file))}]
var_sources:
- {name: vs, type: dummy}
`),
    ).toEqual([
      'ci/p.yml:2:45: resource_types[0].source.path: undefined var `dir`; pass it with -v dir=VALUE or in a -l vars file',
      'ci/p.yml:4:35: resources[0].check_every: undefined var `every`; pass it with -v every=VALUE or in a -l vars file',
      "ci/p.yml:7:36: jobs[0].plan[1].file: var `vs:file` comes from a credential manager, which only a resource's source, a get's or put's params, a task's params, vars and config and a service's params and config (params, run, image_resource) may use; pass the value with -v or -l here",
    ]);
  });

  it('refuses a ref to a var source the file does not declare', () => {
    expect(pipelineError('resources: [{name: r, type: git, source: {uri: ((nope:uri))}}]\njobs: [{name: j, plan: [{get: r}]}]\n')).toEqual([
      'ci/p.yml:1:48: resources[0].source.uri: undefined var `nope:uri`: no var source named `nope` (the plan declares no var_sources)',
    ]);
  });
});

describe('a check resolves its source in the activity', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-check-creds-'));
    // A root worker runs the check under a uid of its own: it must reach the script.
    fs.chmodSync(dir, 0o755);
    // Prints the request's source as its version, and on stderr, then fails when asked to.
    fs.writeFileSync(
      path.join(dir, 'check'),
      `#!${process.execPath}\nconst req = JSON.parse(require('fs').readFileSync(0, 'utf8'));\n` +
        `process.stderr.write('source: ' + JSON.stringify(req.source) + '\\n');\n` +
        `if (req.source.fail) process.exit(2);\n` +
        `console.log(JSON.stringify([{ key: req.source.key, n: String(req.source.n) }]));\n`,
      { mode: 0o755 },
    );
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const ref = (source: Record<string, unknown>, deferred: string[]): ResourceRef => ({
    name: 'r',
    type: { kind: 'host', name: 't', dir },
    source,
    deferredVars: deferred.map((d, i) => ({ ref: d, at: `ci/p.yml:${i + 3}:5: resources[0].source` })),
  });
  const cluster = new DummyStore({ 'main/key': 'k3y-"quoted"\nline2', 'main/p/n': 42, 'main/token': 't0ken-value' });
  const acts = pipelineActivities({
    get home() {
      return path.join(dir, 'home');
    },
    credentials: { team: 'main', redact: true, cluster },
  });

  it('gives the check the values of the worker manager and the var sources, typed, with no JSON text spliced', async () => {
    const varSources = [{ name: 'vs', type: 'dummy' as const, config: { vars: { fail: false } } }];
    const versions = await acts.checkResource({
      pipeline: 'p',
      resource: ref({ key: '((key))', n: '((n))', fail: '((vs:fail))' }, ['key', 'n', 'vs:fail']),
      varSources,
      from: null,
    });
    expect(versions).toEqual([{ key: 'k3y-"quoted"\nline2', n: '42' }]);
  });

  it('fails naming the var, the resource and the line of a ref no manager has', async () => {
    const err = await acts.checkResource({ pipeline: 'p', resource: ref({ key: '((kye))' }, ['kye']), from: null }).catch((e: Error) => e);
    expect((err as Error & { type?: string }).type).toBe('CheckFailed');
    expect((err as Error).message).toBe(
      'resource r: ci/p.yml:3:5: resources[0].source: undefined var `kye`: not found in dummy at main/p/kye, main/kye, kye',
    );
  });

  it("redacts the values from a failed check's error", async () => {
    const err = await acts
      .checkResource({ pipeline: 'p', resource: ref({ key: '((token))', fail: true }, ['token']), from: null })
      .catch((e: Error) => e);
    expect((err as Error).message).toContain('check exited 2');
    expect((err as Error).message).not.toContain('t0ken');
    expect((err as Error).message).toContain('((redacted))');
  });
});
