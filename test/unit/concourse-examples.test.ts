// Every pipeline of Concourse's examples repository (the ones its documentation shows) compiles
// as `causeway set-pipeline` compiles it; pipeline-vars.yml with its vars-file.yml, as its page sets it.
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { compilePipeline } from '../../schemas/pipeline';

const DIR = path.resolve(__dirname, '../fixtures/concourse-examples');
const VARS: Record<string, string> = { 'pipeline-vars.yml': 'vars-file.yml' };
const pipelines = fs.readdirSync(DIR).filter((f) => f.endsWith('.yml') && !Object.values(VARS).includes(f));

test.each(pipelines)('%s compiles', (file) => {
  const vars = VARS[file] ? (YAML.parse(fs.readFileSync(path.join(DIR, VARS[file]), 'utf8')) as Record<string, unknown>) : {};
  const text = fs.readFileSync(path.join(DIR, file), 'utf8');
  const config = compilePipeline({ name: file.replace(/\.yml$/, ''), text, file, vars });
  expect(config.jobs.length).toBeGreaterThan(0);
});

test('golang-lib.yml keeps the names Concourse allows: jobs and resources with dots', () => {
  const text = fs.readFileSync(path.join(DIR, 'golang-lib.yml'), 'utf8');
  const config = compilePipeline({ name: 'golang-lib', text, file: 'golang-lib.yml' });
  expect(config.jobs.map((j) => j.name)).toEqual(['golang-1.20', 'golang-1.21', 'golang-1.22']);
  expect(config.resources.map((r) => r.name)).toEqual(['golang-1.20.x-image', 'golang-1.21.x-image', 'golang-1.22.x-image']);
});
