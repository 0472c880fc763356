// `causeway run` and `watch` with services, as a user sees them: the compiled CLI against the
// real Temporal and NATS of the test run, with a worker on a task queue of its own.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { killMatching, marker, pidsMatching, startHarness, type Harness } from '../workflows/harness';
import { requireBuiltCli, runCli } from './cli-runner';

let h: Harness;
let dir: string;
const m = marker('cli-svc');

beforeAll(async () => {
  requireBuiltCli();
  h = await startHarness({ killGraceMs: 1000 });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-cli-svc-'));
});
afterAll(async () => {
  killMatching(m);
  await h.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const cli = (args: string[]) => runCli(args, { cwd: dir, queue: h.taskQueue });

// A service that prints a line every 50 ms once it listens, and a step that fails.
const PLAN = `
plan:
- task: check
  services:
  - name: web
    grace_period: 1s
    config:
      run:
        path: ${process.execPath}
        args:
        - -e
        - |
          require('net').createServer().listen(Number(process.env.WEB_SERVICE_PORT), process.env.WEB_SERVICE_HOST, () => console.log('web listening ${m}'));
          let n = 0; setInterval(() => console.log('web tick ' + ++n), 50);
      ports: [8080]
  config:
    run: {path: sh, args: [-c, 'sleep 0.3; echo "checking $WEB_SERVICE_HOST:$WEB_SERVICE_PORT"; exit 1']}
`;

describe('causeway run/watch with services', () => {
  test('run interleaves service output with [svc NAME]; a failed build shows its last lines; watch --no-services leaves it out', async () => {
    const file = path.join(dir, 'svc.yml');
    fs.writeFileSync(file, PLAN);
    const run = await cli(['run', file]);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^\[svc web\] web listening /m);
    expect(run.stdout).toMatch(/^\[svc web\] causeway: service web is ready \(every port accepts connections/m);
    expect(run.stdout).toContain('checking 198.18.');
    expect(run.stdout).toMatch(/last lines of service web \[plan\.0\]:\n( {2}.*\n)* {2}web tick \d+/);
    expect(pidsMatching(m)).toEqual([]);

    const buildId = /build (build-[0-9a-f-]+) failed/.exec(run.stdout)![1];
    const quiet = await cli(['watch', buildId, '--no-services']);
    expect(quiet.code).toBe(1);
    expect(quiet.stdout).not.toContain('[svc web]');
    expect(quiet.stdout).toContain('checking 198.18.');
    expect(quiet.stdout).toMatch(/last lines of service web \[plan\.0\]:/);

    const status = await cli(['status', buildId]);
    expect(status.stdout).toMatch(/service web plan\.0\.services\.web stopped \(198\.18\.[\d.]+:8080\)/);
  });
});
