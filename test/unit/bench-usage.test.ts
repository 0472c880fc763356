// `--help` of a bench prints its source's header rather than running it (bench/report.ts).
import path from 'node:path';
import { usage } from '../../bench/report';

const dist = (name: string) => path.resolve(__dirname, '../../dist/bench', `${name}.js`);

test("a bench's usage is its source's leading comment, up to the first line of code", () => {
  const text = usage(dist('k8s-steps'));
  expect(text).toMatch(/^The gap between sequential step pods on the real node/);
  expect(text).toContain('npm run bench:k8s-steps -- [--steps 10]');
  expect(text).not.toContain('import');
});

test('a bench without its source says where it looked', () => {
  expect(usage(dist('no-such-bench'))).toMatch(/no usage: .*bench\/no-such-bench\.ts is not there/);
});
