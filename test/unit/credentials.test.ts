// Credential refs: what the compiler leaves for the worker, Concourse's lookup paths of the
// dummy manager, and redaction of logs (also across chunk boundaries) and errors.
import { CredentialResolver, secretTexts } from '../../activities/creds';
import { DummyStore } from '../../activities/creds/dummy';
import { StepErrored } from '../../activities/errors';
import { VaultStore } from '../../activities/creds/vault';
import { KubernetesStore } from '../../activities/creds/kubernetes';
import { Redactor, redactableLength } from '../../common/redact';
import { compilePlan, PlanError, type TaskStep } from '../../schemas';
import { parseVarRef } from '../../schemas/interpolate';
import { parseServiceConfig } from '../../schemas/services';

const compile = (text: string, opts: { vars?: Record<string, unknown>; deferUnsourced?: boolean } = {}) =>
  compilePlan({ text, file: 'ci/build.yml', ...opts });

function planError(text: string, opts: { deferUnsourced?: boolean } = {}): string[] {
  try {
    compile(text, opts);
  } catch (err) {
    if (err instanceof PlanError) return err.message.split('\n');
    throw err;
  }
  throw new Error('compiled');
}

const SOURCES = `
var_sources:
- name: vault
  type: dummy
  config:
    vars: {password: s3cret, db: {user: app, pass: hunter22}}
`;

describe('compiling credential refs', () => {
  it('leaves refs of declared var_sources in a task for the worker, and records where', () => {
    const plan = compile(`${SOURCES}plan:
- task: t
  params: {PASS: ((vault:password))}
  config:
    run: {path: echo, args: ["((vault:db.user))"]}
`);
    const step = plan.plan.steps[0] as TaskStep;
    expect(step.params.PASS).toBe('((vault:password))');
    expect(step.config?.run.args).toEqual(['((vault:db.user))']);
    expect(plan.varSources).toEqual([
      { name: 'vault', type: 'dummy', config: { vars: { password: 's3cret', db: { user: 'app', pass: 'hunter22' } } } },
    ]);
    expect(plan.deferredVars).toEqual([
      { ref: 'vault:password', at: 'ci/build.yml:9:18: plan[0].params.PASS' },
      { ref: 'vault:db.user', at: 'ci/build.yml:11:30: plan[0].config.run.args[0]' },
    ]);
  });

  it('refuses credential refs where the compiler or the workflow needs the value', () => {
    expect(planError(`${SOURCES}plan:\n- task: t\n  file: ((vault:dir))/t.yml\n`)).toEqual([
      "ci/build.yml:9:9: plan[0].file: var `vault:dir` comes from a credential manager, which only a resource's source, a get's or put's params, a task's params, vars and config and a service's params and config (params, run, image_resource) may use; pass the value with -v or -l here",
    ]);
  });

  it("leaves refs in a service's params and config (params, run, image_resource) for the worker, and refuses them elsewhere in it", () => {
    const plan = compile(`${SOURCES}plan:
- task: t
  config: {run: {path: echo}}
  services:
  - name: db
    params: {PASS: ((vault:password))}
    config:
      params: {USER: ((vault:db.user))}
      run: {path: sh, args: [-c, "((vault:db.pass))"]}
      ports: [5432]
`);
    const db = plan.plan.steps[0].services?.[0];
    expect(db?.params.PASS).toBe('((vault:password))');
    expect(db?.config?.params.USER).toBe('((vault:db.user))');
    expect(db?.config?.run.args).toEqual(['-c', '((vault:db.pass))']);
    expect(plan.deferredVars?.map((d) => d.ref)).toEqual(['vault:password', 'vault:db.user', 'vault:db.pass']);
    expect(
      planError(`${SOURCES}plan:\n- task: t\n  config: {run: {path: echo}}\n  services: [{name: db, file: ((vault:dir))/s.yml}]\n`),
    ).toEqual([
      "ci/build.yml:10:31: plan[0].services[0].file: var `vault:dir` comes from a credential manager, which only a resource's source, a get's or put's params, a task's params, vars and config and a service's params and config (params, run, image_resource) may use; pass the value with -v or -l here",
    ]);
  });

  it('a service file leaves the refs of the var sources it is given in params, run and image_resource', () => {
    const text = 'run: {path: "((vs:cmd))"}\nparams: {P: ((vs:p))}\nports: [80]\n';
    const config = parseServiceConfig({
      text,
      file: 'in/svc.yml',
      service: 's',
      credentials: { varSources: new Set(['vs']), deferUnsourced: false },
    });
    expect(config.run.path).toBe('((vs:cmd))');
    expect(config.params.P).toBe('((vs:p))');
    expect(() =>
      parseServiceConfig({
        text: 'run: {path: x}\nports: ["((vs:port))"]\n',
        file: 'in/svc.yml',
        service: 's',
        credentials: { varSources: new Set(['vs']), deferUnsourced: false },
      }),
    ).toThrow(/comes from a credential manager/);
  });

  it('names the var sources there are when a ref names another', () => {
    expect(planError(`${SOURCES}plan:\n- task: t\n  params: {A: ((valut:x))}\n  config: {run: {path: echo}}\n`)).toEqual([
      'ci/build.yml:9:15: plan[0].params.A: undefined var `valut:x`: no var source named `valut` (var_sources declared: vault)',
    ]);
  });

  it('leaves unsourced refs -v does not give to the worker only when asked', () => {
    const text = 'plan:\n- task: t\n  params: {TOKEN: ((token))}\n  config: {run: {path: echo}}\n';
    expect(planError(text)[0]).toContain('undefined var `token`');
    const plan = compile(text, { deferUnsourced: true });
    expect((plan.plan.steps[0] as TaskStep).params.TOKEN).toBe('((token))');
    expect(plan.deferredVars).toEqual([{ ref: 'token', at: 'ci/build.yml:3:19: plan[0].params.TOKEN' }]);
    // -v still wins, and a plan without credentials carries no credential fields.
    const given = compile(text, { deferUnsourced: true, vars: { token: 'x' } });
    expect(given.deferredVars).toBeUndefined();
    expect(given.varSources).toBeUndefined();
  });

  it('validates var_sources and reports a bad one at its line', () => {
    const errs = planError('var_sources:\n- name: v\n  type: vault\n  config: {url: "ftp://x"}\nplan: []\n');
    expect(errs.join('\n')).toMatch(/ci\/build.yml:4:\d+: var_sources\[0\]\.config/);
  });
});

describe('lookup paths, as Concourse', () => {
  it('dummy: team/pipeline/name, team/name, name', () => {
    expect(new DummyStore({}).lookupPaths('main', 'app', 'pw')).toEqual(['main/app/pw', 'main/pw', 'pw']);
  });
  it('vault: prefix/team/pipeline/name, prefix/team/name, prefix/shared/name', () => {
    const v = new VaultStore({ url: 'http://127.0.0.1:1', client_token: 't', path_prefix: '/concourse/', shared_path: 'shared' });
    expect(v.lookupPaths('main', 'app', 'pw')).toEqual(['/concourse/main/app/pw', '/concourse/main/pw', '/concourse/shared/pw']);
  });
  it('kubernetes: <prefix><team>/<pipeline>.<name>, then <prefix><team>/<name>', () => {
    const k = Object.create(KubernetesStore.prototype) as KubernetesStore;
    Object.assign(k, { opts: { namespace_prefix: 'concourse-' } });
    expect(k.lookupPaths('main', 'app', 'pw')).toEqual(['concourse-main/app.pw', 'concourse-main/pw']);
  });
});

describe('resolving in an activity', () => {
  const sources = [
    {
      name: 'vault',
      type: 'dummy' as const,
      config: { vars: { 'main/app/password': 'p1', password: 'p0', db: { user: 'appuser', pass: 'hunter22' } } },
    },
  ];
  it('takes the first path that has the var and tracks every value it read', async () => {
    const creds = new CredentialResolver({ team: 'main', redact: true }, 'app', sources);
    const { value, missing } = await creds.interpolate({
      a: '((vault:password))',
      b: 'user=((vault:db.user))',
      c: '((.:local))',
      d: '((vault:nope))',
    });
    expect(value).toEqual({ a: 'p1', b: 'user=appuser', c: '((.:local))', d: '((vault:nope))' });
    expect(missing.map((r) => r.raw)).toEqual(['vault:nope']);
    // The whole var is a secret, whichever field a step used.
    expect(creds.redactor.text('p1 appuser hunter22 p0')).toBe('((redacted)) ((redacted)) ((redacted)) p0');
    expect(creds.explain(parseVarRef('vault:nope'))).toBe('not found in dummy at main/app/nope, main/nope, nope');
    expect(creds.explain(parseVarRef('token'))).toMatch(/this worker has no credential manager/);
  });
  it('fills in credentials in map keys too, as Concourse evaluates params and sources, saying what a bad one is but not its value', async () => {
    const creds = new CredentialResolver({ team: 'main', redact: true }, 'app', sources);
    const { value, missing } = await creds.interpolate({ params: { '((vault:db.user))_PASS': '((vault:db.pass))', '((vault:gone))': 1 } });
    expect(value).toEqual({ params: { appuser_PASS: 'hunter22', '((vault:gone))': 1 } });
    expect(missing.map((r) => r.raw)).toEqual(['vault:gone']);
    const err = await creds.interpolate({ params: { '((vault:db))': 1 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StepErrored);
    expect((err as Error).message).toBe('the key `((vault:db))` is a map: a map key is a string, a number, a boolean or null');
  });
  it("unsourced refs go to the worker's cluster-wide manager", async () => {
    const creds = new CredentialResolver({ team: 'main', redact: true, cluster: new DummyStore({ 'main/token': 'tk' }) }, 'app');
    expect((await creds.interpolate('t=((token))')).value).toBe('t=tk');
  });
  it('checks every deferred ref before the build starts, saying where each is used', async () => {
    const creds = new CredentialResolver({ team: 'main', redact: true }, 'app', sources);
    await expect(
      creds.check([
        { ref: 'vault:password', at: 'f:1:1: x' },
        { ref: 'vault:gone', at: 'f:2:3: plan[0].params.A' },
      ]),
    ).rejects.toThrow('f:2:3: plan[0].params.A: undefined var `vault:gone`: not found in dummy at main/app/gone, main/gone, gone');
  });
  it('does not track values with redaction off', async () => {
    const creds = new CredentialResolver({ team: 'main', redact: false }, 'app', sources);
    await creds.interpolate('((vault:password))');
    expect(creds.redactor.empty).toBe(true);
  });
  it('refuses a var source with a bad config when the step runs', () => {
    expect(() => new CredentialResolver({ team: 'main', redact: true }, 'app', [{ name: 'v', type: 'vault', config: {} }])).toThrow(
      /var_sources: v:/,
    );
  });
});

describe('redaction', () => {
  it('redacts each line of a value, trimmed, and not one-character lines', () => {
    const r = new Redactor();
    r.add('-----BEGIN KEY-----\n  abc123  \nx\n');
    expect(r.text('-----BEGIN KEY-----\nabc123\nx\n')).toBe('((redacted))\n((redacted))\nx\n');
  });
  it('replaces a longer value before one it contains', () => {
    const r = new Redactor();
    r.add('pass');
    r.add('password123');
    expect(r.text('password123 pass')).toBe('((redacted)) ((redacted))');
  });
  it('is byte-exact around non-UTF-8 bytes', () => {
    const r = new Redactor();
    r.add('sécret');
    const data = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(' sécret\n')]);
    expect(r.bytes(data)).toEqual(Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(' ((redacted))\n')]));
  });
  it('publishes whole lines, so a value split between two reads is still found', () => {
    const r = new Redactor();
    r.add('s3cret-value');
    const log = Buffer.from('one\ntoken s3cr');
    const n = redactableLength(log, r, { final: false, full: false });
    expect(log.subarray(0, n).toString()).toBe('one\n');
    const rest = Buffer.concat([log.subarray(n), Buffer.from('et-value done')]);
    expect(redactableLength(rest, r, { final: false, full: false })).toBe(0);
    expect(r.bytes(rest.subarray(0, redactableLength(rest, r, { final: true, full: false }))).toString()).toBe('token ((redacted)) done');
  });
  it('cuts a full read without a line end before any value it would split', () => {
    const r = new Redactor();
    r.add('abcdefgh');
    const chunk = Buffer.from(`${'x'.repeat(20)}abcdefgh${'y'.repeat(3)}abcd`);
    const n = redactableLength(chunk, r, { final: false, full: true });
    // Up to the last bytes that could begin the value (the read ends inside `abcd`...).
    expect(chunk.subarray(0, n).toString()).toBe(`${'x'.repeat(20)}abcdefgh`);
    // ... and never inside a whole value: cut before it.
    expect(redactableLength(Buffer.from('zzabcdefghzz'), r, { final: false, full: true })).toBe(2);
  });
  it('publishes at once when nothing is to be redacted', () => {
    expect(redactableLength(Buffer.from('half a li'), new Redactor(), { final: false, full: false })).toBe(9);
  });
});

describe('secretTexts', () => {
  it('gives a secret as a step sees it: the whole (a map as JSON) and every string in it', () => {
    expect(secretTexts(['pw', { user: 'u', pass: 'p', n: 1 }, '', 42])).toEqual(['pw', '{"user":"u","pass":"p","n":1}', 'u', 'p', '42']);
  });
});
