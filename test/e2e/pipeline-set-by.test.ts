// set_pipeline as Concourse's SetPipelineStep: a pipeline last set by a newer build of a job
// is not overwritten by an older one (a warning, the step succeeds), and an older build whose
// file has nothing to change errors (Concourse's SetParentIDs returns ErrSetByNewerBuild).
import fs from 'node:fs';
import path from 'node:path';
import { nodeScript, pipelineReader, pipelineSuite } from './pipeline-cli';
import { waitFor } from '../workflows/harness';

const suite = pipelineSuite('pipeline-set-by', {
  // Steps run as their build's uid: they run the type's scripts and read the files from here.
  shared: true,
});
const { cli } = suite;

beforeAll(() => {
  // A resource type as a directory: versions are the lines of `versions`; version V fetches
  // pipeline-V.yml as pipeline.yml, and V as `v`.
  const type = path.join(suite.dir, 'files');
  fs.mkdirSync(type, { mode: 0o755 });
  fs.writeFileSync(
    path.join(type, 'check'),
    nodeScript(`const lines = fs.readFileSync(req.source.dir + '/versions', 'utf8').split('\\n').filter(Boolean);
process.stdout.write(JSON.stringify(lines.map((v) => ({ v }))));`),
    { mode: 0o755 },
  );
  fs.writeFileSync(
    path.join(type, 'in'),
    nodeScript(`fs.writeFileSync(process.argv[2] + '/v', req.version.v);
fs.copyFileSync(req.source.dir + '/pipeline-' + req.version.v + '.yml', process.argv[2] + '/pipeline.yml');
process.stdout.write(JSON.stringify({ version: req.version, metadata: [] }));`),
    { mode: 0o755 },
  );
  fs.writeFileSync(path.join(type, 'out'), nodeScript(`process.exit(1);`), { mode: 0o755 });
  fs.writeFileSync(path.join(suite.dir, 'versions'), '');
});

const { buildLines } = pipelineReader(cli);
const jobs = () => buildLines('setby');

/** Waits until build `number` of `reconfigure` has the status. */
function reached(number: number, status: string): Promise<unknown> {
  return waitFor(
    `setby/reconfigure #${number} ${status}`,
    async () => (await jobs()).reconfigure?.includes(`#${number} ${status}`),
    120_000,
  );
}

// Builds of versions 1 and 3 wait for a gate file before they set the pipeline.
const base = () => `
resource_types:
- {name: files, type: directory, source: {path: ${suite.dir}/files}}
resources:
- {name: ci, type: files, check_every: 1s, source: {dir: ${suite.dir}}}
jobs:
- name: reconfigure
  plan:
  - get: ci
    trigger: true
    version: every
  - task: wait-for-gate
    config:
      platform: linux
      inputs: [{name: ci}]
      run: {path: sh, args: [-c, 'while [ ! -e ${suite.dir}/gate-$(cat ci/v) ] && [ $(cat ci/v) != 2 ] && [ $(cat ci/v) != 4 ]; do sleep 0.2; done']}
  - set_pipeline: self
    file: ci/pipeline.yml
`;
const job = (name: string) => `- name: ${name}\n  plan: [{task: t, config: {platform: linux, run: {path: 'true'}}}]\n`;

test('an older build does not overwrite a pipeline a newer build of its job set', async () => {
  const write = (v: string, text: string) => fs.writeFileSync(path.join(suite.dir, `pipeline-${v}.yml`), text);
  write('1', base() + job('one'));
  write('2', base() + job('two'));
  write('3', base() + job('two') + job('three'));
  write('4', base() + job('two') + job('three'));
  fs.writeFileSync(path.join(suite.dir, 'setby.yml'), base());
  expect((await cli('set-pipeline', '-n', '-p', 'setby', '-c', 'setby.yml')).code).toBe(0);
  expect((await cli('unpause-pipeline', '-p', 'setby')).code).toBe(0);
  const addVersion = (v: string) => fs.appendFileSync(path.join(suite.dir, 'versions'), `${v}\n`);

  // #1 waits; #2 sets pipeline-2; then #1, older, may not overwrite it: a warning, and it succeeds.
  addVersion('1');
  await reached(1, 'started');
  addVersion('2');
  await reached(2, 'succeeded');
  expect(Object.keys(await jobs())).toEqual(['reconfigure', 'two']);
  fs.writeFileSync(path.join(suite.dir, 'gate-1'), '');
  await reached(1, 'succeeded');
  const log = await cli('watch', 'build-setby:reconfigure:1');
  expect(log.stdout + log.stderr).toContain('WARNING: the pipeline was not saved because it was already saved by a newer build');
  expect(log.stdout + log.stderr).toContain('was set by setby/reconfigure #2');
  expect(Object.keys(await jobs())).toEqual(['reconfigure', 'two']);

  // #3 waits; #4 sets pipeline-4; #3's file is the same: nothing to change, and it errors as Concourse's SetParentIDs does.
  addVersion('3');
  await reached(3, 'started');
  addVersion('4');
  await reached(4, 'succeeded');
  expect(Object.keys(await jobs())).toEqual(['reconfigure', 'two', 'three']);
  fs.writeFileSync(path.join(suite.dir, 'gate-3'), '');
  await reached(3, 'errored');
  const errored = await cli('watch', 'build-setby:reconfigure:3');
  expect(errored.stdout + errored.stderr).toContain('no changes to apply.');
  expect(errored.stdout + errored.stderr).toContain('was set by setby/reconfigure #4, a newer build than setby/reconfigure #3');

  expect((await cli('destroy-pipeline', '-n', '-p', 'setby')).code).toBe(0);
});
