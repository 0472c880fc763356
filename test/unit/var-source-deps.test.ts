// A var source whose config uses ((vars)) of other var sources, as Concourse allows: the order
// Concourse's VarSourceConfigs.OrderByDependency gives (its atc/config_test.go table), what the
// compiler refuses (an undeclared source, a cycle) at the ref, and the worker making each source
// after the ones it reads, with what it read redacted.
import { CredentialResolver } from '../../activities/creds';
import { DummyStore } from '../../activities/creds/dummy';
import { compilePlan, PlanError, type TaskStep } from '../../schemas';
import { parseVarRef } from '../../schemas/interpolate';
import { compilePipeline } from '../../schemas/pipeline';
import { dependencyMessage, orderByDependency, varSourceDependencies } from '../../schemas/var-sources';

const dummy = (name: string, vars: Record<string, unknown>) => ({ name, type: 'dummy' as const, config: { vars } });

describe('orderByDependency, as Concourse', () => {
  // atc/config_test.go's sources
  const vs1 = dummy('vs1', { pk: 'pv' });
  const vs1_5 = dummy('vs1', { pk: '((vs5:pk))' });
  const vs2 = dummy('vs2', { pk: 'pv' });
  const vs3 = dummy('vs3', { pk: '((vs1:pk))' });
  const vs4 = dummy('vs4', { pk: '((vs2:pk))' });
  const vs5 = dummy('vs5', { pk: '((vs3:pk))', pk2: '((vs4:pk))' });
  const names = (list: { name: string }[]) => list.map((s) => s.name);

  it('keeps the order of sources in dependency order', () => {
    const r = orderByDependency([vs1, vs2, vs3, vs4, vs5]);
    expect(names(r.ordered)).toEqual(['vs1', 'vs2', 'vs3', 'vs4', 'vs5']);
    expect(r.problems).toEqual([]);
  });

  it('orders sources in any order as Concourse does', () => {
    const r = orderByDependency([vs4, vs2, vs5, vs1, vs3]);
    expect(names(r.ordered)).toEqual(['vs2', 'vs4', 'vs1', 'vs3', 'vs5']);
  });

  it('places a chain Concourse would refuse ([a uses b, b uses c, c])', () => {
    const r = orderByDependency([dummy('a', { x: '((b:x))' }), dummy('b', { x: '((c:x))' }), dummy('c', { x: 1 })]);
    expect(names(r.ordered)).toEqual(['c', 'b', 'a']);
    expect(r.problems).toEqual([]);
  });

  it('an undeclared source: the ref that names it (Concourse: could not resolve inter-dependent var sources: vs5, vs3)', () => {
    const r = orderByDependency([vs4, vs2, vs5, vs3]);
    expect(names(r.ordered)).toEqual(['vs2', 'vs4']);
    // vs5 waits for vs3 only, which waits for the undeclared vs1: only vs3's ref is the fault.
    expect(r.problems).toEqual([{ source: vs3, dependency: { source: 'vs1', ref: 'vs1:pk', path: ['vars', 'pk'] } }]);
    expect(dependencyMessage(r.problems[0], ['vs4', 'vs2', 'vs5', 'vs3'])).toBe(
      'var source `vs3` uses `((vs1:pk))`, but no var source is named `vs1` (var_sources declared: vs4, vs2, vs5, vs3)',
    );
  });

  it('a cycle: each ref around it, with the way back (Concourse: ... vs1, vs5, vs3)', () => {
    const r = orderByDependency([vs1_5, vs4, vs2, vs5, vs3]);
    expect(names(r.ordered)).toEqual(['vs2', 'vs4']);
    expect(r.problems.map((p) => [p.source.name, p.dependency.ref, p.cycle])).toEqual([
      ['vs1', 'vs5:pk', ['vs1', 'vs5', 'vs3', 'vs1']],
      ['vs5', 'vs3:pk', ['vs5', 'vs3', 'vs1', 'vs5']],
      ['vs3', 'vs1:pk', ['vs3', 'vs1', 'vs5', 'vs3']],
    ]);
    expect(dependencyMessage(r.problems[0], [])).toBe(
      "var source `vs1` uses `((vs5:pk))`, but `vs5` needs `vs1` first: vs1 -> vs5 -> vs3 -> vs1 (could not resolve inter-dependent var sources); take one of these values from another var source, -v/-l or the workers' credential manager",
    );
  });

  it('a source that uses itself is a cycle of one', () => {
    const self = dummy('a', { x: 'y', z: '((a:x))' });
    const r = orderByDependency([self]);
    expect(r.ordered).toEqual([]);
    expect(r.problems).toEqual([{ source: self, dependency: { source: 'a', ref: 'a:x', path: ['vars', 'z'] }, cycle: ['a', 'a'] }]);
    expect(dependencyMessage(r.problems[0], ['a'])).toMatch(/^var source `a` uses its own var `\(\(a:x\)\)`/);
  });

  it('local vars, service addresses and unsourced refs name no source', () => {
    expect(varSourceDependencies({ a: ['((.:x))', '((.svc:db.address))', '((x))', 'p-((vs:y.z))'] })).toEqual([
      { source: 'vs', ref: 'vs:y.z', path: ['a', 3] },
    ]);
  });
});

const compile = (text: string, opts: { vars?: Record<string, unknown>; deferUnsourced?: boolean } = {}) =>
  compilePlan({ text, file: 'ci/build.yml', ...opts });

function planError(text: string, opts: { vars?: Record<string, unknown>; deferUnsourced?: boolean } = {}): string[] {
  try {
    compile(text, opts);
  } catch (err) {
    if (err instanceof PlanError) return err.message.split('\n');
    throw err;
  }
  throw new Error('compiled');
}

const TASK = `plan:
- task: t
  params: {P: ((b:password))}
  config: {platform: linux, run: {path: echo}}
`;

describe('compiling var sources that use other var sources', () => {
  it('leaves the refs in the config for the worker, orders the sources and checks the refs before the first step', () => {
    const plan = compile(
      `var_sources:
- name: b
  type: dummy
  config:
    vars: {password: ((a:token)), user: app-((env))}
- {name: a, type: dummy, config: {vars: {token: t0k}}}
${TASK}`,
      { vars: { env: 'prod' } },
    );
    expect(plan.varSources).toEqual([
      { name: 'a', type: 'dummy', config: { vars: { token: 't0k' } } },
      { name: 'b', type: 'dummy', config: { vars: { password: '((a:token))', user: 'app-prod' } } },
    ]);
    expect(plan.deferredVars).toEqual([
      { ref: 'a:token', at: 'ci/build.yml:5:22: var_sources[0].config.vars.password' },
      { ref: 'b:password', at: 'ci/build.yml:9:15: plan[0].params.P' },
    ]);
    expect((plan.plan.steps[0] as TaskStep).params.P).toBe('((b:password))');
  });

  it('refuses a ref to an undeclared source at the ref', () => {
    expect(planError(`var_sources:\n- {name: b, type: dummy, config: {vars: {password: ((c:token))}}}\n${TASK}`)).toEqual([
      'ci/build.yml:2:52: var_sources[0].config.vars.password: undefined var `c:token`: no var source named `c` (var_sources declared: b)',
    ]);
  });

  it('refuses a cycle at each of its refs, and a source that uses itself', () => {
    expect(
      planError(`var_sources:
- {name: a, type: dummy, config: {vars: {x: ((b:y))}}}
- {name: b, type: dummy, config: {vars: {y: ((a:x))}}}
${TASK}`),
    ).toEqual([
      "ci/build.yml:2:45: var_sources[0].config.vars.x: var source `a` uses `((b:y))`, but `b` needs `a` first: a -> b -> a (could not resolve inter-dependent var sources); take one of these values from another var source, -v/-l or the workers' credential manager",
      "ci/build.yml:3:45: var_sources[1].config.vars.y: var source `b` uses `((a:x))`, but `a` needs `b` first: b -> a -> b (could not resolve inter-dependent var sources); take one of these values from another var source, -v/-l or the workers' credential manager",
    ]);
    expect(planError(`var_sources:\n- {name: b, type: dummy, config: {vars: {x: 1, y: "((b:x))"}}}\n${TASK}`)).toEqual([
      "ci/build.yml:2:51: var_sources[0].config.vars.y: var source `b` uses its own var `((b:x))`: a var source's config may use only the vars of other var sources, -v/-l, or the workers' credential manager",
    ]);
  });

  it("unsourced refs: -v/-l, else the workers' manager when the build may use it, else refused as any undefined var", () => {
    const text = `var_sources:\n- {name: b, type: vault, config: {url: "http://vault:8200", client_token: ((vault-token))}}\n${TASK}`;
    expect(compile(text, { vars: { 'vault-token': 's' } }).varSources?.[0].config).toMatchObject({ client_token: 's' });
    expect(planError(text)).toEqual([
      "ci/build.yml:2:75: var_sources[0].config.client_token: undefined var `vault-token`; pass it with -v vault-token=VALUE or in a -l vars file, or from the workers' credential manager with --creds-from-worker",
    ]);
    const plan = compile(text, { deferUnsourced: true });
    expect(plan.varSources?.[0].config).toMatchObject({ client_token: '((vault-token))' });
    expect(plan.deferredVars?.[0]).toEqual({ ref: 'vault-token', at: 'ci/build.yml:2:75: var_sources[0].config.client_token' });
  });

  it('checks a config with refs in place, but not what a ref will give (the worker checks that once it is resolved)', () => {
    const plan = compile(`var_sources:
- {name: a, type: dummy, config: {vars: {url: "http://vault:8200", t: x}}}
- {name: b, type: vault, config: {url: ((a:url)), client_token: ((a:t))}}
${TASK}`);
    // Kept as written: no defaults until the worker parses it.
    expect(plan.varSources?.[1]).toEqual({ name: 'b', type: 'vault', config: { url: '((a:url))', client_token: '((a:t))' } });
    expect(
      planError(`var_sources:
- {name: a, type: dummy, config: {vars: {url: "http://vault:8200"}}}
- {name: b, type: vault, config: {url: ((a:url)), client_tokn: x, path_prefix: "//"}}
${TASK}`).join('\n'),
    ).toEqual(
      [
        'ci/build.yml:3:34: var_sources[1].config.client_token: missing required key `client_token` (a string)',
        'ci/build.yml:3:51: var_sources[1].config.client_tokn: unknown key `client_tokn` in `config`; did you mean `client_token`?',
        'ci/build.yml:3:80: var_sources[1].config.path_prefix: path_prefix is a path like /concourse',
      ].join('\n'),
    );
  });

  it("refuses local vars and service addresses in a var source's config", () => {
    expect(planError(`var_sources:\n- {name: b, type: dummy, config: {vars: {x: ((.:v))}}}\n${TASK}`)).toEqual([
      "ci/build.yml:2:45: var_sources[0].config.vars.x: `((.:v))`: a var source's config cannot use local vars or service addresses, which exist only in a build's steps",
    ]);
  });

  it("a pipeline's var sources: unsourced refs are always the workers', each job checks the configs' refs", () => {
    const config = compilePipeline({
      name: 'app',
      file: 'ci/p.yml',
      text: `var_sources:
- {name: b, type: dummy, config: {vars: {password: ((a:token)), user: ((db-user))}}}
- {name: a, type: dummy, config: {vars: {token: t0k}}}
jobs:
- name: j
${TASK.replace(/^/gm, '  ')}`,
    });
    expect(config.varSources?.map((s) => s.name)).toEqual(['a', 'b']);
    expect(config.jobs[0].plan.varSources?.map((s) => s.name)).toEqual(['a', 'b']);
    expect(config.jobs[0].plan.deferredVars?.map((d) => d.ref)).toEqual(['a:token', 'db-user', 'b:password']);
    expect(() =>
      compilePipeline({
        name: 'app',
        file: 'ci/p.yml',
        text: `var_sources:\n- {name: b, type: dummy, config: {vars: {x: ((b:x))}}}\njobs:\n- name: j\n${TASK.replace(/^/gm, '  ')}`,
      }),
    ).toThrow(/^ci\/p\.yml:2:45: var_sources\[0\]\.config\.vars\.x: var source `b` uses its own var `\(\(b:x\)\)`/);
  });
});

describe('the worker makes each var source after those its config reads', () => {
  const sources = [
    dummy('b', { password: 'pw-((a:token))', whole: '((a:token))', map: '((a:creds))' }),
    dummy('a', { token: 's3cret-t0ken', creds: { user: 'u', pass: 'hunter22' } }),
  ];

  it("resolves B's config from A, then B's vars; A's values are redacted as any credential", async () => {
    const creds = new CredentialResolver({ team: 'main', redact: true }, 'app', sources);
    expect(creds.deferring.varSources).toEqual(new Set(['a', 'b']));
    const { value, missing } = await creds.interpolate({ p: '((b:password))', w: '((b:whole))', u: '((b:map.user))' });
    expect(missing).toEqual([]);
    expect(value).toEqual({ p: 'pw-s3cret-t0ken', w: 's3cret-t0ken', u: 'u' });
    expect(creds.redactor.text('pw-s3cret-t0ken s3cret-t0ken hunter22')).toBe('((redacted)) ((redacted)) ((redacted))');
    // What it looked up for B's config is recalled by a later activity too.
    expect([...creds.found].sort()).toEqual(['a:creds', 'a:token', 'b:map.user', 'b:password', 'b:whole']);
    const later = new CredentialResolver({ team: 'main', redact: true }, 'app', sources);
    await later.recall(['b:whole']);
    expect(later.redactor.text('s3cret-t0ken')).toBe('((redacted))');
  });

  it("takes unsourced refs of a config from the worker's cluster-wide manager", async () => {
    const cluster = new DummyStore({ 'main/vault-url': 'http://127.0.0.1:1', 'main/app/token': 'tk' });
    const creds = new CredentialResolver({ team: 'main', redact: true, cluster }, 'app', [
      { name: 'v', type: 'vault', config: { url: '((vault-url))', client_token: '((token))' } },
    ]);
    await creds.lookup(parseVarRef('v:x')).catch(() => undefined);
    expect(creds.explain(parseVarRef('v:x'))).toBe(
      'not found in vault http://127.0.0.1:1 (/concourse) at /concourse/main/app/x, /concourse/main/x',
    );
    expect(creds.redactor.text('tk')).toBe('((redacted))');
  });

  it('says which ref of a config is undefined, where the plan has it before the first step', async () => {
    const creds = new CredentialResolver({ team: 'main', redact: true }, 'app', [dummy('b', { p: '((a:gone))' }), dummy('a', {})]);
    await expect(creds.lookup(parseVarRef('b:p'))).rejects.toThrow(
      "var_sources: b: its config's var `a:gone` is undefined: not found in dummy at main/app/gone, main/gone, gone",
    );
    const again = new CredentialResolver({ team: 'main', redact: true }, 'app', [dummy('b', { p: '((a:gone))', q: 1 }), dummy('a', {})]);
    const err = await again
      .check([
        { ref: 'a:gone', at: 'ci/p.yml:2:3: var_sources[0].config.vars.p' },
        { ref: 'b:p', at: 'ci/p.yml:9:15: plan[0].params.P' },
        { ref: 'b:q', at: 'ci/p.yml:10:15: plan[0].params.Q' },
      ])
      .catch((e: Error & { reason?: string }) => e);
    expect((err as Error).message.split('\n')).toEqual([
      'ci/p.yml:2:3: var_sources[0].config.vars.p: undefined var `a:gone`: not found in dummy at main/app/gone, main/gone, gone',
      "ci/p.yml:9:15: plan[0].params.P: var_sources: b: its config's var `a:gone` is undefined: not found in dummy at main/app/gone, main/gone, gone",
    ]);
    expect((err as { reason?: string }).reason).toBe('UndefinedVar');
    const noCluster = new CredentialResolver({ team: 'main', redact: true }, 'app', [dummy('b', { p: '((tok))' })]);
    await expect(noCluster.lookup(parseVarRef('b:p'))).rejects.toThrow(
      "var_sources: b: its config's var `tok` is undefined: not given with -v/-l, and this worker has no credential manager (CAUSEWAY_CREDS)",
    );
  });

  it('checks the config once resolved, and its message shows no value it read', async () => {
    const creds = new CredentialResolver({ team: 'main', redact: true }, 'app', [
      dummy('a', { url: 'ftp://s3cret-host' }),
      { name: 'v', type: 'vault', config: { url: '((a:url))', client_token: 't' } },
    ]);
    const err = (await creds.lookup(parseVarRef('v:x')).catch((e: unknown) => e)) as Error & { reason?: string };
    expect(err.message).toMatch(/^var_sources: v: .*vault url must be http:\/\/ or https:\/\//);
    expect(err.message).not.toContain('s3cret-host');
    expect(err.reason).toBe('BadVarSource');
  });

  it('refuses a cycle or an undeclared source a build input holds (the compiler refuses them first)', () => {
    expect(
      () => new CredentialResolver({ team: 'main', redact: true }, 'app', [dummy('a', { x: '((b:y))' }), dummy('b', { y: '((a:x))' })]),
    ).toThrow(/^var_sources: var source `a` uses `\(\(b:y\)\)`, but `b` needs `a` first: a -> b -> a/);
    expect(() => new CredentialResolver({ team: 'main', redact: true }, 'app', [dummy('a', { x: '((c:y))' })])).toThrow(
      'var_sources: var source `a` uses `((c:y))`, but no var source is named `c` (var_sources declared: a)',
    );
  });
});
