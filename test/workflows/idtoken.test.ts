// Concourse's idtoken var source on real builds: the task's ((x:token)) is a JWT the worker
// signed, verifiable against the JWKS of its keys, naming the build (a one-off build's plan, a
// job build's job and its pipeline instance), redacted from the log (the task also prints it in
// base64, which redaction does not know, for the test to read); a worker without an issuer
// errors the build before its first step, naming the flag.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TypedSearchAttributes } from '@temporalio/common';
import { collectServiceLogs } from '../../common/build-log';
import { IdTokenIssuer, publicJwks, readIdTokenKeys } from '../../common/idtoken';
import { CausewayBuildNumber, CausewayJob, CausewayPipeline } from '../../common/search-attributes';
import { BUILD_WORKFLOW, type BuildInput } from '../../schemas/build';
import { pipelineKey } from '../../schemas/instance-vars';
import { compilePipeline } from '../../schemas/pipeline';
import { jobBuildId } from '../../schemas/pipeline-api';
import { verifyJwt } from '../fixtures/jwt';
import { sh, startHarness, type Harness } from './harness';

const ISSUER = 'https://ci.example.com';
let dir: string;
let issuer: IdTokenIssuer;
let h: Harness;
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'causeway-idtoken-build-'));
  issuer = new IdTokenIssuer(ISSUER, path.join(dir, 'idtoken-keys.json'));
  h = await startHarness({ credentials: { team: 'ops', redact: true, idtoken: issuer } });
});
afterAll(async () => {
  await h.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const PRINT = sh('print', 'echo "plain: $T"; printf "b64: %s\\n" "$(printf %s "$T" | base64 | tr -d "\\n")"', {
  params: { T: '((idt:token))' },
});

/** The token the task printed in base64, its signature checked against the JWKS of the worker's keys; its claims. */
function claimsOf(log: string): Record<string, unknown> {
  expect(log).toContain('plain: ((redacted))');
  const token = Buffer.from(/b64: (\S+)/.exec(log)![1], 'base64').toString();
  return verifyJwt(token, publicJwks(readIdTokenKeys(issuer.keysFile))).claims;
}

test("a one-off build's token names the worker's team and the plan, no job", async () => {
  const r = await h.run(`var_sources:\n- {name: idt, type: idtoken, config: {audience: [vault.example.com, sts]}}\nplan:\n- ${PRINT}\n`, {
    file: 'deploy.yml',
  });
  expect(r.message).toBeUndefined();
  expect(r.status).toBe('succeeded');
  const claims = claimsOf(r.logs.get('plan.0') ?? '');
  expect(claims).toEqual({
    aud: ['vault.example.com', 'sts'],
    exp: (claims.iat as number) + 3600,
    iat: expect.any(Number),
    iss: ISSUER,
    job: '',
    pipeline: 'deploy',
    sub: 'ops/deploy',
    team: 'ops',
  });
});

test("a job build of a pipeline instance: its token names the job and the instance's vars, a / in them %2F in sub", async () => {
  const instanceVars = { env: 'prod/eu' };
  const text = `var_sources:\n- {name: idt, type: idtoken, config: {subject_scope: job, algorithm: ES256, expires_in: 90s}}\njobs:\n- name: deploy\n  plan:\n  - ${PRINT}\n`;
  const config = compilePipeline({ name: 'app', text, file: 'app.yml', instanceVars });
  const key = pipelineKey({ name: 'app', instanceVars });
  const input: BuildInput = { plan: config.jobs[0].plan, uploads: [], downloads: [] };
  // As the pipeline starts a job's build (activities/pipeline.ts startJobBuild).
  const handle = await h.client.workflow.start(BUILD_WORKFLOW, {
    taskQueue: h.taskQueue,
    workflowId: jobBuildId(key, 'deploy', 1),
    args: [input],
    typedSearchAttributes: new TypedSearchAttributes([
      { key: CausewayPipeline, value: key },
      { key: CausewayJob, value: 'deploy' },
      { key: CausewayBuildNumber, value: '1' },
    ]),
  });
  const r = await h.finish(handle);
  expect(r.message).toBeUndefined();
  expect(r.status).toBe('succeeded');
  const claims = claimsOf(r.logs.get('plan.0') ?? '');
  expect(claims).toEqual({
    exp: (claims.iat as number) + 90,
    iat: expect.any(Number),
    instance_vars: instanceVars,
    iss: ISSUER,
    job: 'deploy',
    pipeline: 'app',
    sub: 'ops/app/env:"prod%2Feu"/deploy',
    team: 'ops',
  });
});

test("a service's token is redacted from what it prints after its start, which later activities stream", async () => {
  const service = {
    name: 'svc',
    config: {
      params: { T: '((idt:token))' },
      run: {
        path: 'sh',
        args: ['-c', 'sleep 1; echo "plain: $T"; printf "b64: %s\\n" "$(printf %s "$T" | base64 | tr -d "\\n")"; exec sleep 30'],
      },
    },
  };
  const r = await h.run(
    `var_sources:\n- {name: idt, type: idtoken, config: {algorithm: ES256}}\nplan:\n- ${sh('use', 'sleep 3', { services: [service] })}\n`,
  );
  expect(r.message).toBeUndefined();
  expect(r.status).toBe('succeeded');
  const log = (await collectServiceLogs(h.nc, r.buildId)).get('plan.0/svc') ?? '';
  expect(claimsOf(log)).toMatchObject({ sub: 'ops/test', iss: ISSUER });
  expect(log).not.toMatch(/eyJ[\w-]+\.eyJ/);
});

test('a worker without an issuer errors the build before its first step, naming the flag', async () => {
  const bare = await startHarness({ credentials: { team: 'main', redact: true } });
  try {
    const r = await bare.run(`var_sources:\n- {name: idt, type: idtoken}\nplan:\n- ${sh('never', 'echo ran')}\n- ${PRINT}\n`);
    expect(r.status).toBe('errored');
    expect(r.message).toContain('this worker has no idtoken issuer; start it with --idtoken-issuer URL (CAUSEWAY_IDTOKEN_ISSUER)');
    expect(r.logs.get('plan.0')).toBeUndefined();
  } finally {
    await bare.stop();
  }
});
