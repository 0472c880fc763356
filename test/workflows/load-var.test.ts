// load_var: formats json/yaml/trim/raw, default by extension, errors, against the real servers.
// The values are printed to check them, so they are loaded with `reveal: true` (a load_var's
// value is otherwise redacted from logs, as Concourse does: test/workflows/credentials.test.ts).
import { sh, startHarness, type Harness } from './harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.stop());

/** A plan that writes `content` to out/<file>, loads it, and runs `use`. */
const plan = (file: string, content: string, loadExtra: Record<string, unknown>, use: string) =>
  `plan:\n- ${sh('write', `printf '%s' '${content}' > out/${file}`, {}, { outputs: [{ name: 'out' }] })}\n- ${JSON.stringify({
    load_var: 'v',
    file: `out/${file}`,
    reveal: true,
    ...loadExtra,
  })}\n- ${sh('use', use)}`;

describe('load_var', () => {
  test('json by extension: fields are reachable', async () => {
    const r = await h.run(plan('v.json', '{"name": "causeway", "n": 3, "list": [1, 2]}', {}, 'echo "((.:v.name)) ((.:v.n))"'));
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.2')).toBe('causeway 3\n');
  });

  test('yaml by extension, .yml and .yaml', async () => {
    for (const ext of ['yml', 'yaml']) {
      const r = await h.run(plan(`v.${ext}`, 'name: from-yaml', {}, 'echo "((.:v.name))"'));
      expect(r.status).toBe('succeeded');
      expect(r.logs.get('plan.2')).toBe('from-yaml\n');
    }
  });

  test('trim by default for other extensions', async () => {
    const r = await h.run(plan('version', '  1.2.3  \n\n', {}, 'echo "[((.:v))]"'));
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.2')).toBe('[1.2.3]\n');
  });

  test('raw keeps whitespace', async () => {
    const r = await h.run(plan('version', ' 1.2.3 ', { format: 'raw' }, 'echo "[((.:v))]"'));
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.2')).toBe('[ 1.2.3 ]\n');
  });

  test('an explicit format wins over the extension', async () => {
    const r1 = await h.run(plan('data.txt', '{"a": "json-in-txt"}', { format: 'json' }, 'echo "((.:v.a))"'));
    expect(r1.logs.get('plan.2')).toBe('json-in-txt\n');
    const r2 = await h.run(plan('data.json', ' {"a": 1} ', { format: 'trim' }, `echo '((.:v))'`));
    expect(r2.logs.get('plan.2')).toBe('{"a": 1}\n');
  });

  test('invalid json, a missing file and an unknown artifact error the build', async () => {
    const bad = await h.run(plan('v.json', '{not json', {}, 'true'));
    expect(bad.status).toBe('errored');
    expect(bad.message).toMatch(/not valid json/);
    const missing = await h.run(`plan:\n- ${sh('write', 'true', {}, { outputs: [{ name: 'out' }] })}\n- {load_var: v, file: out/none.txt}`);
    expect(missing.status).toBe('errored');
    expect(missing.message).toMatch(/cannot read out\/none\.txt/);
    const noArtifact = await h.run(`plan:\n- {load_var: v, file: nowhere/x.txt}`);
    expect(noArtifact.status).toBe('errored');
  });

  test('a load_var inside a do is visible to later steps of the build', async () => {
    const write = sh('write', `printf v9 > out/ver`, {}, { outputs: [{ name: 'out' }] });
    const r = await h.run(`plan:\n- {do: [${write}, {load_var: ver, file: out/ver, reveal: true}]}\n- ${sh('use', 'echo ((.:ver))')}`);
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.1')).toBe('v9\n');
  });

  test('a loaded var fills task params and args at run time', async () => {
    const write = sh('write', `printf '{"tag": "v1.2"}' > out/meta.json`, {}, { outputs: [{ name: 'out' }] });
    const use = sh('use', 'echo "$TAG ((.:meta.tag))"', { params: { TAG: '((.:meta.tag))' } });
    const r = await h.run(`plan:\n- ${write}\n- {load_var: meta, file: out/meta.json, reveal: true}\n- ${use}`);
    expect(r.status).toBe('succeeded');
    expect(r.logs.get('plan.2')).toBe('v1.2 v1.2\n');
  });
});
