// The first pipeline of Concourse's id-token docs page (docs/docs/operation/creds/id-token.md in
// concourse/docs, "Usage"), set through the CLI as an instance and triggered: its task prints
// ((myidtoken:token)), which the log shows redacted; a job added beside it prints the token in
// base64, which verifies against the worker's keys and names the pipeline, the instance and the job.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { IdTokenIssuer, publicJwks, readIdTokenKeys } from '../../common/idtoken';
import { ID_TOKEN_DOCS_PIPELINES } from '../fixtures/concourse-docs-id-token';
import { verifyJwt } from '../fixtures/jwt';
import { startHarness, type Harness } from '../workflows/harness';
import { requireBuiltCli, runCli, type CliResult } from './cli-runner';

jest.setTimeout(600_000);

const CLAIMS_JOB = `  - name: claims
    plan:
      - task: print
        config:
          platform: linux
          params: {T: ((myidtoken:token))}
          run: {path: sh, args: [-c, 'printf "b64: %s\\n" "$(printf %s "$T" | base64 | tr -d "\\n")"']}
`;

let h: Harness;
let dir: string;
let issuer: IdTokenIssuer;

beforeAll(async () => {
  requireBuiltCli();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-pipeline-idtoken-'));
  fs.chmodSync(dir, 0o755);
  issuer = new IdTokenIssuer('https://ci.example.com', path.join(dir, 'keys', 'idtoken-keys.json'));
  h = await startHarness({ killGraceMs: 1000, credentials: { team: 'main', redact: true, idtoken: issuer } });
});
afterAll(async () => {
  await h.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const cli = (...args: string[]): Promise<CliResult> => runCli(args, { cwd: dir, queue: h.taskQueue });

test("the docs page's pipeline runs, its token redacted; a job's token names the job of the instance", async () => {
  const file = path.join(dir, 'docs.yml');
  // As the page shows it (the local runtime ignores its mock image_resource), and a job of ours.
  fs.writeFileSync(file, ID_TOKEN_DOCS_PIPELINES.usage + CLAIMS_JOB);
  const set = await cli('set-pipeline', '-n', '-p', 'docs', '-c', file, '-i', 'env=prod/eu');
  expect(set.stderr).toContain('pipeline created: docs/env:"prod/eu"');
  expect(set.code).toBe(0);
  expect((await cli('unpause-pipeline', '-p', 'docs/env:"prod/eu"')).code).toBe(0);

  const printed = await cli('trigger-job', '-w', '-j', 'docs/env:"prod/eu"/print-creds');
  expect(printed.stdout).toContain('myidtoken: ((redacted))');
  expect(printed.code).toBe(0);

  const claimed = await cli('trigger-job', '-w', '-j', 'docs/env:"prod/eu"/claims');
  expect(claimed.code).toBe(0);
  const token = Buffer.from(/b64: (\S+)/.exec(claimed.stdout)![1], 'base64').toString();
  const { claims } = verifyJwt(token, publicJwks(readIdTokenKeys(issuer.keysFile)));
  expect(claims).toEqual({
    aud: 'sts.amazonaws.com',
    exp: (claims.iat as number) + 3600,
    iat: expect.any(Number),
    instance_vars: { env: 'prod/eu' },
    iss: 'https://ci.example.com',
    job: 'claims',
    pipeline: 'docs',
    sub: 'main/docs',
    team: 'main',
  });
});
