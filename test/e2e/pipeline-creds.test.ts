// Credential refs in a pipeline, as Concourse leaves them for its credential manager: set-pipeline
// keeps what -v/-l do not give, the check, get and put resolve them in their activities (the
// worker's manager and the pipeline's var_sources), and no value reaches a history (decoded with
// the codec) or a log. A typo'd ref fails the check and the build naming the var, the resource
// and the line. Testflight's var-sources.yml sets and its job runs green.
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { DummyStore } from '../../activities/creds/dummy';
import { AesGcmPayloadCodec, loadCodecKeys } from '../../common/codec';
import { requireBuiltCli, runCli } from './cli-runner';
import { nodeScript, pipelineReader } from './pipeline-cli';
import { startHarness, type Harness } from '../workflows/harness';

jest.setTimeout(600_000);
const secret = `g1t-key-${randomUUID()}`;
const execSecret = `exec-${randomUUID()}`;
const pushSecret = `push-${randomUUID()}`;
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
let h: Harness;
let dir: string;

beforeAll(async () => {
  requireBuiltCli();
  // The worker's cluster-wide manager holds the key, for pipeline `creds` only (Concourse's
  // team/pipeline/name path: checks and job builds look up under the pipeline's name, not the
  // job's); the pipeline file never holds it.
  h = await startHarness({
    killGraceMs: 1000,
    credentials: {
      team: 'main',
      redact: true,
      cluster: new DummyStore({ 'main/creds/git-key': secret, 'main/exec-secret': execSecret }),
    },
  });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-pipeline-creds-'));
  // Steps run as their build's uid: they run the types' scripts from here.
  fs.chmodSync(dir, 0o755);
  // `keyed`: check's version is the hash of the key it was given (so the check saw the value,
  // and the version holds none); in writes the key to `key` and says it on stderr; out makes a
  // version from the hash of params.password.
  const type = path.join(dir, 'keyed');
  fs.mkdirSync(type, { mode: 0o755 });
  const hash = `const sha = (s) => require('crypto').createHash('sha256').update(s).digest('hex');`;
  fs.writeFileSync(
    path.join(type, 'check'),
    nodeScript(`${hash}\nprocess.stderr.write('checking with ' + req.source.private_key + '\\n');
process.stdout.write(JSON.stringify([{ sha: sha(req.source.private_key) }]));`),
    { mode: 0o755 },
  );
  fs.writeFileSync(
    path.join(type, 'in'),
    nodeScript(`fs.writeFileSync(process.argv[2] + '/key', req.source.private_key);
process.stderr.write('fetched with ' + req.source.private_key + '\\n');
process.stdout.write(JSON.stringify({ version: req.version, metadata: [] }));`),
    { mode: 0o755 },
  );
  fs.writeFileSync(
    path.join(type, 'out'),
    nodeScript(`${hash}\nprocess.stderr.write('pushing with ' + req.source.private_key + ' and ' + req.params.password + '\\n');
process.stdout.write(JSON.stringify({ version: { sha: sha(req.params.password) }, metadata: [] }));`),
    { mode: 0o755 },
  );
  // Concourse's `mock` resource as testflight's workers ship it, the part var-sources.yml uses:
  // its version is source.initial_version, and in writes `version` and source.create_files.
  const mock = path.join(dir, 'mock');
  fs.mkdirSync(mock, { mode: 0o755 });
  fs.writeFileSync(
    path.join(mock, 'check'),
    nodeScript(`process.stdout.write(JSON.stringify([{ version: req.source.initial_version }]));`),
    {
      mode: 0o755,
    },
  );
  fs.writeFileSync(
    path.join(mock, 'in'),
    nodeScript(`fs.writeFileSync(process.argv[2] + '/version', req.version.version);
for (const [f, v] of Object.entries(req.source.create_files || {})) fs.writeFileSync(process.argv[2] + '/' + f, String(v));
process.stdout.write(JSON.stringify({ version: req.version, metadata: [] }));`),
    { mode: 0o755 },
  );
  fs.writeFileSync(path.join(mock, 'out'), nodeScript(`process.exit(1);`), { mode: 0o755 });
});
afterAll(async () => {
  await h?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const cli = (...args: string[]) => runCli(args, { cwd: dir, queue: h.taskQueue });
const { ended } = pipelineReader(cli);

/** Every payload of a workflow's history (all its runs), decoded with the workers' codec, as text. */
async function decodedHistory(workflowId: string): Promise<string> {
  const codec = new AesGcmPayloadCodec(loadCodecKeys({ home: h.home })!);
  const texts: string[] = [];
  let runId: string | undefined;
  // The pipeline continues as new: read back through every run of its chain.
  for (;;) {
    const handle = h.client.workflow.getHandle(workflowId, runId);
    const json = historyToJSON(await handle.fetchHistory());
    const payloads: { metadata?: Record<string, string>; data?: string }[] = [];
    const collect = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(collect);
      else if (node && typeof node === 'object') {
        const o = node as Record<string, unknown>;
        if (o.metadata && typeof o.metadata === 'object' && 'encoding' in o.metadata) payloads.push(o);
        else Object.values(o).forEach(collect);
      }
    };
    const parsed = JSON.parse(json) as { events: { workflowExecutionStartedEventAttributes?: { continuedExecutionRunId?: string } }[] };
    collect(parsed);
    const b64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64');
    const decoded = await codec.decode(
      payloads.map((p) => ({
        metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, b64(v)])),
        data: b64(p.data),
      })),
    );
    texts.push(json, ...decoded.map((p) => Buffer.from(p.data ?? new Uint8Array()).toString('utf8')));
    runId = parsed.events[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId;
    if (!runId) break;
  }
  return texts.join('\n');
}

const PIPELINE = (typeDir: string, keyRef: string) => `
resource_types:
- {name: keyed, type: directory, source: {path: ${typeDir}}}
resources:
- name: repo
  type: keyed
  check_every: never
  source: {uri: ((uri)), private_key: ${keyRef}}
var_sources:
- {name: vs, type: dummy, config: {vars: {push-password: ${pushSecret}}}}
jobs:
- name: build
  plan:
  - get: repo
  - task: use
    config:
      platform: linux
      inputs: [{name: repo}]
      params: {EXPECTED: ((git-key))}
      run: {path: sh, args: [-ec, 'test "$(cat repo/key)" = "$EXPECTED"; echo "matched: $(cat repo/key)"']}
  - put: repo
    params: {password: ((vs:push-password))}
`;

test('a secret in a resource source is resolved by the worker: the check, get and put see it, histories and logs do not', async () => {
  fs.writeFileSync(path.join(dir, 'creds.yml'), PIPELINE(path.join(dir, 'keyed'), '((git-key))'));
  const set = await cli('set-pipeline', '-n', '-p', 'creds', '-c', 'creds.yml', '-v', 'uri=file:///nowhere');
  expect(set.code).toBe(0);
  // The diff is of the file: the ref, never a value.
  expect(set.stdout).toContain('private_key: ((git-key))');
  expect(set.stdout + set.stderr).not.toContain(secret);
  // It names the refs it leaves for the workers, so a typo shows at once.
  expect(set.stderr).toContain('credential refs the workers resolve when a check or build runs: ((git-key)), ((vs:push-password))');

  const checked = await cli('check-resource', '-r', 'creds/repo');
  expect(checked.code).toBe(0);
  expect((await cli('unpause-pipeline', '-p', 'creds')).code).toBe(0);
  const versions = JSON.parse((await cli('resource-versions', '-r', 'creds/repo', '--json')).stdout) as { version: { sha: string } }[];
  // The put's version (the hash of the var source's value) and the check's (the hash of the key).
  expect(versions.map((v) => v.version.sha)).toContain(sha(secret));

  expect((await cli('trigger-job', '-j', 'creds/build')).code).toBe(0);
  const status = await ended('creds', 'build', 1);
  const log = await cli('watch', 'build-creds:build:1');
  const text = log.stdout + log.stderr;
  expect({ status, text }).toMatchObject({ status: 'succeeded' });
  const versionsAfter = JSON.parse((await cli('resource-versions', '-r', 'creds/repo', '--json')).stdout) as { version: { sha: string } }[];
  expect(versionsAfter.map((v) => v.version.sha)).toContain(sha(pushSecret));

  expect(text).toContain('matched: ((redacted))');
  expect(text).toContain('fetched with ((redacted))');
  expect(text).toContain('pushing with ((redacted)) and ((redacted))');
  expect(text).not.toContain(secret);
  expect(text).not.toContain(pushSecret);

  for (const id of ['build-creds:build:1', 'pipeline-creds']) {
    const history = await decodedHistory(id);
    expect(history).toContain('((git-key))');
    expect(history).not.toContain(secret);
  }
  // The var source's value is in the pipeline file (a dummy source), so in its config: only the key is the worker's.
  expect((await cli('destroy-pipeline', '-n', '-p', 'creds')).code).toBe(0);
});

test("a typo'd ref sets, then fails the check and the build naming the var, the resource and the line", async () => {
  // A job with no inputs (only a put): trigger-job starts it though no check can succeed.
  const text = PIPELINE(path.join(dir, 'keyed'), '((git-kye))').replace(/ {2}- get: repo\n[^]*?( {2}- put: repo)/, '$1');
  fs.writeFileSync(path.join(dir, 'typo.yml'), text);
  expect((await cli('set-pipeline', '-n', '-p', 'typo', '-c', 'typo.yml', '-v', 'uri=x')).code).toBe(0);
  const checked = await cli('check-resource', '-r', 'typo/repo');
  expect(checked.code).not.toBe(0);
  expect(checked.stderr).toContain(
    'resource repo: typo.yml:8:39: resources[0].source.private_key: undefined var `git-kye`: not found in dummy at main/typo/git-kye, main/git-kye, git-kye',
  );

  expect((await cli('unpause-pipeline', '-p', 'typo')).code).toBe(0);
  expect((await cli('trigger-job', '-j', 'typo/build')).code).toBe(0);
  expect(await ended('typo', 'build', 1)).toBe('errored');
  const log = await cli('watch', 'build-typo:build:1');
  expect(log.stdout + log.stderr).toContain(
    'typo.yml:8:39: resources[0].source.private_key: undefined var `git-kye`: not found in dummy at main/typo/git-kye, main/git-kye, git-kye',
  );
  expect((await cli('destroy-pipeline', '-n', '-p', 'typo')).code).toBe(0);
});

test("testflight's var-sources.yml sets and its job runs green", async () => {
  const fixture = fs.readFileSync(path.resolve(__dirname, '../fixtures/concourse/var-sources.yml'), 'utf8');
  // Testflight's workers ship `mock` as a base type; here it is a directory type declared after the file.
  fs.writeFileSync(
    path.join(dir, 'var-sources.yml'),
    `${fixture}\nresource_types:\n- {name: mock, type: directory, source: {path: ${path.join(dir, 'mock')}}}\n`,
  );
  const set = await cli('set-pipeline', '-n', '-p', 'vs', '-c', 'var-sources.yml');
  expect(set.code).toBe(0);
  expect((await cli('unpause-pipeline', '-p', 'vs')).code).toBe(0);
  expect((await cli('trigger-job', '-j', 'vs/use-vars')).code).toBe(0);
  const status = await ended('vs', 'use-vars', 1);
  const log = await cli('watch', 'build-vs:use-vars:1');
  expect({ status, log: log.stdout + log.stderr }).toMatchObject({ status: 'succeeded' });
  expect((await cli('destroy-pipeline', '-n', '-p', 'vs')).code).toBe(0);
});

test("a var source's config takes values from another var source and the worker's manager: the step sees them, the log does not", async () => {
  const token = `chained-${randomUUID()}`;
  // b is declared first and reads a: the worker makes a, then b's config from it, then b. The
  // manager's secret is not in the file (the step checks its hash), so not in the history either.
  fs.writeFileSync(
    path.join(dir, 'chained.yml'),
    `var_sources:
- name: b
  type: dummy
  config:
    vars: {token: ((a:token)), greeting: "hello ((a:who))", key: ((exec-secret))}
- {name: a, type: dummy, config: {vars: {token: ${token}, who: world}}}
jobs:
- name: print
  plan:
  - task: print
    config:
      platform: linux
      params: {TOKEN: ((b:token)), KEY: ((b:key)), GREETING: ((b:greeting))}
      run: {path: sh, args: [-ec, 'test "$TOKEN" = "${token}"; printf %s "$KEY" | sha256sum | grep -q ${sha(execSecret)}; echo "token: $TOKEN key: $KEY $GREETING"']}
`,
  );
  const set = await cli('set-pipeline', '-n', '-p', 'chained', '-c', 'chained.yml');
  expect(set.code).toBe(0);
  expect((await cli('unpause-pipeline', '-p', 'chained')).code).toBe(0);
  expect((await cli('trigger-job', '-j', 'chained/print')).code).toBe(0);
  const status = await ended('chained', 'print', 1);
  const log = await cli('watch', 'build-chained:print:1');
  const text = log.stdout + log.stderr;
  expect({ status, text }).toMatchObject({ status: 'succeeded' });
  // b's vars are credentials, and so is what a and the worker's manager gave b's config.
  expect(text).toContain('token: ((redacted)) key: ((redacted)) ((redacted))');
  expect(text).not.toContain(token);
  expect(text).not.toContain(execSecret);
  expect(await decodedHistory('build-chained:print:1')).not.toContain(execSecret);

  // A cycle is refused at set-pipeline, naming the ref's line.
  fs.writeFileSync(
    path.join(dir, 'cycle.yml'),
    'var_sources:\n- {name: a, type: dummy, config: {vars: {x: ((b:y))}}}\n- {name: b, type: dummy, config: {vars: {y: ((a:x))}}}\njobs:\n- name: j\n  plan: []\n',
  );
  const cycle = await cli('set-pipeline', '-n', '-p', 'cycle', '-c', 'cycle.yml');
  expect(cycle.code).not.toBe(0);
  expect(cycle.stderr).toContain(
    'cycle.yml:2:45: var_sources[0].config.vars.x: var source `a` uses `((b:y))`, but `b` needs `a` first: a -> b -> a',
  );
  expect((await cli('destroy-pipeline', '-n', '-p', 'chained')).code).toBe(0);
});

test("execute --creds-from-worker leaves the task file's refs to the worker's manager, as fly execute's one-off build", async () => {
  fs.writeFileSync(
    path.join(dir, 'exec-task.yml'),
    `platform: linux
params: {KEY: ((exec-secret))}
run: {path: sh, args: [-c, 'test "$KEY" = "${execSecret}" && echo matched; echo "key: $KEY"']}
`,
  );
  const refused = await cli('execute', '-c', 'exec-task.yml');
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain('undefined var `exec-secret`');
  expect(refused.stderr).toContain('--creds-from-worker');
  const ran = await cli('execute', '-c', 'exec-task.yml', '--creds-from-worker');
  expect(ran.code).toBe(0);
  expect(ran.stdout).toContain('matched');
  expect(ran.stdout).toContain('key: ((redacted))');
  expect(ran.stdout + ran.stderr).not.toContain(execSecret);
});
