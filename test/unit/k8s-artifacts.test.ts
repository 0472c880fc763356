// The kubernetes worker's artifact addressing (pure) and its upload server, served on loopback
// and read by the real input-fetcher with the build's token.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fetchInputs } from '../../agent/causeway-agent';
import { paths } from '../../activities/deps';
import { podArtifact, streamerUrl } from '../../activities/runtime/kubernetes/artifact-ref';
import { StepErrored } from '../../activities/errors';
import { Uploads } from '../../activities/runtime/kubernetes/uploads';
import { artifactFile } from '../../activities/step/task-config';

test('artifact refs of pods and the output-streamer URLs they become', () => {
  expect(podArtifact('w', 'cw-build-0123456789abcdef', 'out/bin')).toEqual({
    kind: 'pod',
    worker: 'w',
    pod: 'cw-build-0123456789abcdef',
    path: 'out/bin',
  });
  expect(streamerUrl('198.18.1.7', 'out/bin')).toBe('http://198.18.1.7:7788/artifacts/out/bin');
  expect(streamerUrl('198.18.1.7', 'my out', 'ci/task file.yml')).toBe(
    'http://198.18.1.7:7788/artifacts/my%20out?file=ci%2Ftask%20file.yml',
  );
  expect(streamerUrl('fd00::7', 'out')).toBe('http://[fd00::7]:7788/artifacts/out');
});

test('file: <artifact>/<path> splits at the first slash, and names the artifacts there are when it cannot', () => {
  const artifacts = { repo: podArtifact('w', 'p', 'repo') };
  expect(artifactFile('b', 'repo/ci/task.yml', artifacts, 'task t')).toEqual({
    buildId: 'b',
    artifact: 'repo',
    rel: 'ci/task.yml',
    ref: artifacts.repo,
  });
  expect(() => artifactFile('b', 'other/task.yml', artifacts, 'task t')).toThrow(
    'task t: file other/task.yml: the first part of the path must name an artifact (available: repo)',
  );
  expect(() => artifactFile('b', 'repo', artifacts, 'task t')).toThrow(StepErrored);
  expect(() => artifactFile('b', 'repo/', artifacts, 'task t')).toThrow(StepErrored);
});

describe('the upload server', () => {
  const token = 'c'.repeat(64);
  const buildId = 'build-1234';
  let home: string;
  let uploads: Uploads;

  beforeAll(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'uploads-'));
    const dir = paths.inputs(home, buildId, 'src');
    fs.mkdirSync(path.join(dir, 'lib'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'lib', 'a.c'), 'int a;\n');
    uploads = new Uploads({
      home,
      worker: 'w1',
      // only the object store fallback uses NATS; every upload here is on the disk
      nc: undefined as never,
      token: async (id) => {
        if (id !== buildId) throw new StepErrored(`build ${id} has no artifact token`);
        return token;
      },
    });
    await uploads.listen({ host: '127.0.0.1', port: 0 });
  });

  afterAll(async () => {
    await uploads.close();
    fs.rmSync(home, { recursive: true, force: true });
  });

  test('knows its uploads by the path prepareBuild gives them, and their URLs', () => {
    expect(uploads.isUpload(buildId, 'src', { kind: 'dir', worker: 'w1', path: paths.inputs(home, buildId, 'src') })).toBe(true);
    expect(uploads.isUpload(buildId, 'src', { kind: 'dir', worker: 'w2', path: paths.inputs(home, buildId, 'src') })).toBe(false);
    expect(uploads.isUpload(buildId, 'src', { kind: 'dir', worker: 'w1', path: '/elsewhere/src' })).toBe(false);
    expect(uploads.urlFor(buildId, 'src')).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/uploads\/build-1234\/src$/);
  });

  test('the input-fetcher pulls an upload with the build’s token', async () => {
    const workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'uploads-consumer-'));
    await fetchInputs({ workdir, token, inputs: [{ name: 'src', path: 'source', url: uploads.urlFor(buildId, 'src')! }], mkdirs: [] });
    expect(fs.readFileSync(path.join(workdir, 'source', 'lib', 'a.c'), 'utf8')).toBe('int a;\n');
    fs.rmSync(workdir, { recursive: true, force: true });
  });

  test('refuses a wrong or missing token, an unknown build, and anything but GET /uploads/<build>/<name>', async () => {
    const url = uploads.urlFor(buildId, 'src')!;
    const base = uploads.address!;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: `Bearer ${'d'.repeat(64)}` } })).status).toBe(401);
    const unknown = await fetch(`${base}/uploads/build-other/src`, { headers: { authorization: `Bearer ${token}` } });
    // The same answer as a wrong token: the server does not say which build ids exist.
    expect([unknown.status, await unknown.text()]).toEqual([401, 'bad or missing token\n']);
    expect((await fetch(`${base}/uploads/${buildId}/..%2F..%2Fetc`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(404);
    expect((await fetch(`${base}/uploads/${buildId}`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(404);
    expect((await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).status).toBe(404);
  });
});
