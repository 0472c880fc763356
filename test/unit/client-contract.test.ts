// The client contract of docs/client.md: the committed JSON Schemas are the ones the zod
// schemas generate, and every example plan compiles to an input the workflow accepts unchanged.
import fs from 'node:fs';
import path from 'node:path';
import { loadPlan, loadVarFiles } from '../../schemas';
import { BUILD_INPUT_VERSION, BuildInputSchema, clientJsonSchemas, parseBuildInput } from '../../schemas/build-input';

const root = path.join(__dirname, '..', '..');
const committed = (which: string) =>
  JSON.parse(fs.readFileSync(path.join(root, 'docs', 'schemas', `build-${which}.v${BUILD_INPUT_VERSION}.json`), 'utf8'));

test('docs/schemas holds the JSON Schemas the zod schemas generate (regenerate: causeway compile --schema input|result)', () => {
  const schemas = clientJsonSchemas();
  expect(committed('input')).toEqual(schemas.input);
  expect(committed('result')).toEqual(schemas.result);
});

test.each(['hello.yml', 'ci.yml', 'integration.yml', 'crash-it.yml'])(
  'examples/%s compiles to an input the workflow accepts as it is',
  (file) => {
    const vars = file === 'ci.yml' ? loadVarFiles([path.join(root, 'examples', 'ci-vars.yml')]) : {};
    const input = { plan: loadPlan({ file: path.join(root, 'examples', file), vars }), uploads: ['repo'], downloads: [] };
    expect(parseBuildInput(JSON.parse(JSON.stringify(input)))).toEqual(input);
  },
);

test('what is wrong is named by its JSON path', () => {
  expect(() => parseBuildInput({ plan: 'examples/hello.yml' })).toThrow(
    'invalid build input (see docs/client.md): plan: Invalid input: expected object, received string',
  );
  expect(() => parseBuildInput({ plan: { name: 'j', source: 's', plan: { kind: 'do', id: 'plan', steps: [] } }, extra: 1 })).toThrow(
    '(input): Unrecognized key: "extra"',
  );
  expect(BuildInputSchema.parse({ plan: { name: 'j', source: 's', plan: { kind: 'do', id: 'plan', steps: [] } } })).toMatchObject({
    uploads: [],
    downloads: [],
  });
});
