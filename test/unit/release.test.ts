import type { ArtifactRef } from '../../activities/types';
import { compilePlan } from '../../schemas';
import { ArtifactReleaser } from '../../workflows/release';

function releaser(yaml: string, downloads: string[] = []) {
  const released: string[][] = [];
  const plan = compilePlan({ text: yaml, file: 'ci.yml' }).plan;
  const r = new ArtifactReleaser(plan, downloads, async (_refs: ArtifactRef[], names: string[]) => {
    released.push(names);
  });
  const produce = (...names: string[]) =>
    r.produced(Object.fromEntries(names.map((n) => [n, { kind: 'pod' as const, worker: 'w', pod: `p-${n}`, path: n }])));
  return { r, released, produce, ids: collectIds(plan) };
}

/** task name → step id */
function collectIds(step: unknown, out: Record<string, string> = {}): Record<string, string> {
  if (Array.isArray(step)) step.forEach((s) => collectIds(s, out));
  else if (step && typeof step === 'object') {
    const s = step as { id?: string; task?: string };
    if (s.task && s.id) out[s.task] = s.id;
    Object.values(step).forEach((v) => collectIds(v, out));
  }
  return out;
}

const task = (name: string, inputs: string[] = [], outputs: string[] = [], extra = '') => `
- task: ${name}
  config:
    platform: linux
    run: {path: "true"}
    inputs: [${inputs.map((i) => `{name: ${i}}`).join(', ')}]
    outputs: [${outputs.map((o) => `{name: ${o}}`).join(', ')}]${extra}`;

describe('ArtifactReleaser', () => {
  it('releases a producer once its last reader ended', () => {
    const { r, released, produce, ids } = releaser(
      `plan:${task('build', [], ['bin'])}${task('unit', ['bin'])}${task('lint', ['bin'])}${task('done')}`,
    );
    produce('bin');
    r.stepEnded(ids.build);
    r.stepEnded(ids.unit);
    expect(released).toEqual([]);
    r.stepEnded(ids.lint);
    expect(released).toEqual([['bin']]);
  });

  it('releases at once what nothing reads, and never what -o downloads', () => {
    const { released, produce } = releaser(`plan:${task('build', [], ['bin', 'report'])}${task('pkg', [], ['tarball'])}`, ['tarball']);
    produce('bin', 'report');
    expect(released).toEqual([['bin', 'report']]);
    produce('tarball');
    expect(released).toHaveLength(1);
  });

  it('follows input_mapping', () => {
    const { r, released, produce, ids } = releaser(
      `plan:${task('build', [], ['bin'])}${task('unit', ['code'], [], '\n  input_mapping: {code: bin}')}`,
    );
    produce('bin');
    expect(released).toEqual([]);
    r.stepEnded(ids.unit);
    expect(released).toEqual([['bin']]);
  });

  it('waits for a reader inside attempts until every attempt is over', () => {
    const { r, released, produce, ids } = releaser(`plan:
${task('build', [], ['bin'])}
- do:${task('unit', ['bin']).replace(/\n/g, '\n  ')}
  attempts: 3`);
    produce('bin');
    r.stepEnded(ids.unit);
    expect(released).toEqual([]);
    r.stepEnded('plan.1');
    expect(released).toEqual([['bin']]);
  });

  it('counts a hook that did not run as done when its step ends', () => {
    const { r, released, produce, ids } = releaser(`plan:
${task('build', [], ['bin'])}${task('unit', ['bin'])}
  on_failure:
    task: upload
    config: {platform: linux, run: {path: "true"}, inputs: [{name: bin}]}`);
    produce('bin');
    r.stepEnded(ids.unit);
    expect(released).toEqual([['bin']]);
  });

  it('holds everything for a task whose config comes from a file until it ended', () => {
    const { r, released, produce, ids } = releaser(`plan:${task('build', [], ['bin', 'src'])}
- task: from-file
  file: src/ci/test.yml`);
    produce('bin', 'src');
    expect(released).toEqual([]);
    r.stepEnded(ids['from-file']);
    expect(released).toEqual([['bin', 'src']]);
  });

  it('does not wait for a reader that already ended', () => {
    const { r, released, produce, ids } = releaser(
      `plan:${task('first', [], ['out'])}${task('reader', ['out'])}${task('second', [], ['out'])}`,
    );
    produce('out');
    r.stepEnded(ids.reader);
    expect(released).toEqual([['out']]);
    produce('out');
    expect(released).toEqual([['out'], ['out']]);
  });
});
