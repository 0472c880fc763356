// Credential managers on a real build: refs resolved in the task's activity (never in the
// history), values redacted from what reaches JetStream (so `causeway watch`) also when the
// task writes a value in two pieces, from errors, and from load_var values unless `reveal`.
import { randomUUID } from 'node:crypto';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { jetstream } from '@nats-io/jetstream';
import { DummyStore } from '../../activities/creds/dummy';
import { BUILD_STREAM, subjects } from '../../schemas/messages';
import { collectServiceLogs } from '../../common/build-log';
import { sh, startHarness, type Harness } from './harness';

const secret = `s3cret-${randomUUID()}`;
const token = `tok-${randomUUID()}`;
let h: Harness;
beforeAll(async () => {
  // The worker's cluster-wide manager: a value only the worker knows.
  h = await startHarness({ credentials: { team: 'main', redact: true, cluster: new DummyStore({ 'main/token': token }) } });
});
afterAll(() => h.stop());

const sources = (vars: Record<string, unknown>) => `var_sources:\n- ${JSON.stringify({ name: 'vs', type: 'dummy', config: { vars } })}\n`;

/** Every message the build's subjects hold, as JetStream stores it. */
async function rawMessages(buildId: string): Promise<string[]> {
  const consumer = await jetstream(h.nc).consumers.get(BUILD_STREAM, { filter_subjects: subjects.allOfBuild(buildId) });
  const out: string[] = [];
  for (let pending = (await consumer.info()).num_pending; pending > 0; pending--) {
    const msg = await consumer.next({ expires: 5000 });
    if (!msg) break;
    out.push(Buffer.from(msg.data).toString('latin1'));
  }
  return out;
}

/** The history as stored (payloads still encoded), as JSON text. */
async function historyText(workflowId: string): Promise<string> {
  return historyToJSON(await h.client.workflow.getHandle(workflowId).fetchHistory());
}

test('a secret a task prints, whole or in two pieces, reaches JetStream only as ((redacted))', async () => {
  // The second half comes a second later: the first is already in the file, waiting for its line end.
  const script = [
    'echo "whole: $PASS"',
    'printf "split: %s" "$(printf %s "$PASS" | cut -c1-8)"',
    'sleep 1.5',
    'printf "%s end\\n" "$(printf %s "$PASS" | cut -c9-)"',
    'echo "arg: ((vs:password)) token: ((token))" >&2',
    'printf "no newline at the end: $PASS"',
  ].join('; ');
  const r = await h.run(`${sources({ password: secret })}plan:\n- ${sh('print', script, { params: { PASS: '((vs:password))' } })}`, {
    deferUnsourced: true,
  });
  expect(r.status).toBe('succeeded');
  // stdout and stderr are files of their own: their order in the log is not fixed.
  const log = r.logs.get('plan.0') ?? '';
  expect(log).toContain('whole: ((redacted))\nsplit: ((redacted)) end\n');
  expect(log).toContain('arg: ((redacted)) token: ((redacted))\n');
  expect(log).toContain('no newline at the end: ((redacted))');
  const raw = await rawMessages(r.buildId);
  expect(raw.length).toBeGreaterThan(3);
  for (const m of raw) {
    expect(m).not.toContain(secret);
    expect(m).not.toContain(secret.slice(0, 8));
    expect(m).not.toContain(token);
  }
  // The worker's own value never entered the history, even encrypted.
  expect(await historyText(r.buildId)).not.toContain(Buffer.from(token).toString('base64').slice(0, 12));
});

test('an error that holds a secret says ((redacted)) in the build and on JetStream', async () => {
  const r = await h.run(
    `${sources({ cmd: `/nonexistent/${secret}` })}plan:\n- {task: t, config: {platform: linux, run: {path: "((vs:cmd))"}}}`,
  );
  expect(r.status).toBe('errored');
  expect(r.message).toContain('((redacted))');
  expect(r.message).not.toContain(secret);
  for (const m of await rawMessages(r.buildId)) expect(m).not.toContain(secret);
});

test('a ref found nowhere ends the build before its first step, saying where it is used', async () => {
  const r = await h.run(
    `${sources({})}plan:\n- ${sh('never', 'echo ran')}\n- ${sh('uses', 'true', { params: { A: '((vs:nope))', B: '((missing))' } })}`,
    { deferUnsourced: true },
  );
  expect(r.status).toBe('errored');
  expect(r.message).toContain('test.yml:5:103: plan[1].params.A: ');
  expect(r.message).toContain('undefined var `vs:nope`: not found in dummy at main/test/nope, main/nope, nope');
  expect(r.message).toContain('undefined var `missing`: not found in dummy at main/test/missing, main/missing, missing');
  expect(r.logs.get('plan.0')).toBeUndefined();
});

test("load_var values are redacted from later steps' logs unless reveal: true", async () => {
  const write = sh('write', `printf '${secret}' > out/secret; printf 'public-1.2.3' > out/version`, {}, { outputs: [{ name: 'out' }] });
  const r = await h.run(
    `plan:\n- ${write}\n- {load_var: pw, file: out/secret}\n- {load_var: version, file: out/version, reveal: true}\n- ${sh('use', 'echo "((.:pw)) ((.:version))"')}`,
  );
  expect(r.status).toBe('succeeded');
  expect(r.logs.get('plan.3')).toBe('((redacted)) public-1.2.3\n');
});

test("as Concourse's tracker, a load_var list's items are not redacted, a map's string fields are (testflight's across.yml)", async () => {
  const write = sh(
    'write',
    `printf '["item-one", 4]' > out/list.json; printf '{"pw": "${secret}", "n": 7}' > out/map.json`,
    {},
    { outputs: [{ name: 'out' }] },
  );
  const use = { ...JSON.parse(sh('use', 'echo "item ((.:x)) ((.:map.pw)) ((.:map.n))"')), across: [{ var: 'x', values: '((.:list))' }] };
  const r = await h.run(
    `plan:\n- ${write}\n- {load_var: list, file: out/list.json}\n- {load_var: map, file: out/map.json}\n- ${JSON.stringify(use)}`,
  );
  expect(r.message).toBeUndefined();
  expect(r.status).toBe('succeeded');
  const log = [...r.logs.values()].join('');
  expect(log).toContain('item item-one ((redacted)) 7\n');
  expect(log).toContain('item 4 ((redacted)) 7\n');
});

test("a load_var value is redacted from a service's log (its output, split writes, and the error quoting it) as from a task's", async () => {
  const write = sh('write', `echo ${secret} > out/secret`, {}, { outputs: [{ name: 'out' }] });
  // The second has a port it never opens: it exits before it is ready, and the step errors quoting its output.
  const service = (name: string, script: string, ports: number[] = []) => ({
    name,
    config: { params: { S: '((.:pw))' }, run: { path: 'sh', args: ['-c', script] }, ports },
  });
  const r = await h.run(
    `plan:\n- ${write}\n- {load_var: pw, file: out/secret}\n- ${sh('use', 'sleep 1', {
      services: [service('svc', 'echo "service has $S"; printf "%s" "${S%%-*}"; sleep 0.3; echo "-${S#*-}"; exec sleep 30')],
    })}\n- ${sh('crash', 'true', { services: [service('bad', 'echo "dying with $S"; exit 3', [9999])] })}`,
  );
  expect(r.status).toBe('errored');
  const logs = await collectServiceLogs(h.nc, r.buildId);
  expect(logs.get('plan.2/svc')).toContain('service has ((redacted))\n');
  // Written in two pieces 300 ms apart, published as one redacted line (Causeway's notes may come between).
  expect(logs.get('plan.2/svc')).toMatch(/\n\(\(redacted\)\)\n/);
  expect(logs.get('plan.3/bad')).toContain('dying with ((redacted))');
  expect(r.message).toContain('dying with ((redacted))');
  for (const text of [...logs.values(), r.message ?? '']) expect(text).not.toContain(secret);
});

// The file's ref is written as (''( so that the task writing it does not resolve it itself.
test("a service's credential refs (inline, from the worker's manager, in its file) are resolved by its activity and redacted from its log and errors", async () => {
  const writeFile = sh(
    'write',
    `printf '%s\\n' 'run: {path: sh, args: [-c, "echo from-file $F; exec sleep 30"]}' 'params: {F: (''(vs:password))}' > cfg/svc.yml`,
    {},
    {
      outputs: [{ name: 'cfg' }],
    },
  );
  const service = (name: string, script: string, ports: number[] = []) => ({
    name,
    params: { T: '((token))' },
    config: { params: { S: '((vs:password))' }, run: { path: 'sh', args: ['-c', script] }, ports },
  });
  const r = await h.run(
    `${sources({ password: secret })}plan:\n- ${writeFile}\n- ${sh('use', 'sleep 1', {
      services: [
        service('svc', 'echo "service has $S and $T"; printf "%s" "${S%%-*}"; sleep 0.3; echo "-${S#*-}"; exec sleep 30'),
        { name: 'filed', file: 'cfg/svc.yml' },
      ],
    })}\n- ${sh('crash', 'true', { services: [service('bad', 'echo "dying with $S"; exit 3', [9999])] })}`,
    { deferUnsourced: true },
  );
  expect(r.status).toBe('errored');
  const logs = await collectServiceLogs(h.nc, r.buildId);
  expect(logs.get('plan.1/svc')).toContain('service has ((redacted)) and ((redacted))\n');
  expect(logs.get('plan.1/svc')).toMatch(/\n\(\(redacted\)\)\n/);
  expect(logs.get('plan.1/filed')).toContain('from-file ((redacted))\n');
  expect(logs.get('plan.2/bad')).toContain('dying with ((redacted))');
  expect(r.message).toContain('dying with ((redacted))');
  for (const text of [...logs.values(), r.message ?? '']) expect(text).not.toContain(secret);
  for (const m of await rawMessages(r.buildId)) {
    expect(m).not.toContain(secret);
    expect(m).not.toContain(token);
  }
  // The refs reached the history, the worker's value did not, even encrypted.
  expect(await historyText(r.buildId)).not.toContain(Buffer.from(token).toString('base64').slice(0, 12));
});
