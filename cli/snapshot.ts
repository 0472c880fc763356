// The client commands' V8 startup snapshot (docs/cli.md, "Start-up"). `npm run build` runs the
// client bundle under `node --build-snapshot` (scripts/bundle-cli.mjs), which calls warmSnapshot
// and writes the heap to dist/cli/client.snapshot.blob; bin/causeway starts Node from that blob
// for a client command, and the snapshot's main calls fromSnapshot. What a command's start-up
// spent most on, protobufjs building its reflection of Temporal's API, zod and the plan
// schemas, and compiling the functions a build's submission calls, is then already done.
//
// Only modules that keep nothing of the process that wrote the snapshot are evaluated here:
// no environment, working directory, terminal, clock or random value in a module's state (the
// snapshot would hand it to every later process), no socket, timer or child. Node cannot put
// http, http2, tls or child_process in a snapshot anyway: gRPC, NATS and the commands load
// after the snapshot's main starts, as they do without one.
import fs from 'node:fs';
import path from 'node:path';
import { deferredExtraCaCerts } from './extra-ca';

/** A plan that uses what most plans do, so that compiling it compiles the compiler's common paths. */
const SAMPLE_PLAN = `name: sample
plan:
- task: unit
  config:
    platform: linux
    image_resource: {type: registry-image, source: {repository: busybox}}
    inputs: [{name: src}]
    outputs: [{name: out}]
    caches: [{path: .cache}]
    params: {TOKEN: ((token)), LEVEL: "2"}
    run: {path: sh, args: [-c, "make test"], dir: src}
  input_mapping: {src: repo}
  timeout: 10m
  attempts: 2
- in_parallel:
    limit: 2
    steps:
    - task: lint
      file: out/lint.yml
    - do:
      - task: pack
        file: out/pack.yml
      ensure:
        task: clean
        file: out/clean.yml
`;

/** The Temporal RPCs the client commands make: their messages' encoders and decoders are made here. */
const RPCS = [
  'GetSystemInfo',
  'StartWorkflowExecution',
  'GetWorkflowExecutionHistory',
  'DescribeWorkflowExecution',
  'QueryWorkflow',
  'SignalWorkflowExecution',
  'UpdateWorkflowExecution',
  'PollWorkflowExecutionUpdate',
  'ListWorkflowExecutions',
  'CountWorkflowExecutions',
  'RequestCancelWorkflowExecution',
  'TerminateWorkflowExecution',
];

/**
 * Run once, while Node writes the snapshot: evaluates the pure modules every client command
 * loads and runs their first uses on samples, so that their functions are compiled (and zod's
 * and protobufjs's generated ones made) in the snapshot rather than in every process.
 */
export function warmSnapshot(): void {
  (require('./lazy-protobuf') as typeof import('./lazy-protobuf')).lazyProtobuf();
  const protobuf = require('protobufjs/light') as typeof import('protobufjs/light');
  const { temporal } = require('@temporalio/proto') as typeof import('@temporalio/proto');
  const service = temporal.api.workflowservice.v1.WorkflowService as unknown as import('protobufjs/light').Service;
  const seen = new Set<import('protobufjs/light').Type>();
  const makeCodecs = (type: import('protobufjs/light').Type): void => {
    if (seen.has(type)) return;
    seen.add(type);
    const message = type.fromObject({});
    type.toObject(type.decode(type.encode(message).finish()));
    for (const field of type.fieldsArray) {
      const resolved = field.resolve().resolvedType;
      if (resolved instanceof protobuf.Type) makeCodecs(resolved);
    }
  };
  for (const rpc of RPCS) {
    const method = service.methods[rpc];
    if (!method) throw new Error(`the snapshot's warm-up names ${rpc}, which this @temporalio/proto lacks`);
    method.resolve();
    makeCodecs(method.resolvedRequestType!);
    makeCodecs(method.resolvedResponseType!);
  }
  require('@temporalio/common');
  // NATS's nkey signing (tweetnacl builds its tables at load); the keys and their randomness come at call time.
  require('@nats-io/nkeys');

  const { compilePlan } = require('../schemas') as typeof import('../schemas');
  compilePlan({ file: 'sample.yml', text: SAMPLE_PLAN, vars: { token: 'sample' } });
  const { readEnv } = require('../common/config') as typeof import('../common/config');
  readEnv({});
  const { BuildEvent } = require('../schemas/messages') as typeof import('../schemas/messages');
  const time = '2026-01-01T00:00:00.000Z';
  BuildEvent.parse({ type: 'build-started', buildId: 'build-1', plan: 'sample', time });
  BuildEvent.parse({ type: 'step-started', buildId: 'build-1', stepId: 's1', name: 'unit', attempt: 1, time });
  BuildEvent.parse({ type: 'step-finished', buildId: 'build-1', stepId: 's1', name: 'unit', attempt: 1, state: 'succeeded', time });
  BuildEvent.parse({ type: 'build-finished', buildId: 'build-1', status: 'succeeded', time });
  const { StackStateSchema } = require('./dev/state') as typeof import('./dev/state');
  const component = { pid: 1, command: 'sample', args: [], logFile: 'sample.log' };
  StackStateSchema.parse({
    persistent: true,
    logDir: 'logs',
    temporal: { ...component, address: '127.0.0.1:7233', uiUrl: 'http://127.0.0.1:8233', dbFile: null },
    nats: { ...component, url: 'nats://127.0.0.1:4222', monitorUrl: 'http://127.0.0.1:8222', storeDir: 'nats' },
    workers: [{ name: 'worker', pid: 1, command: 'sample', logFile: 'worker.log' }],
    codecServer: { url: 'http://127.0.0.1:8234', pid: 1, command: 'sample', logFile: 'codec.log' },
    startedAt: time,
  });
}

/**
 * The snapshot's main, in each process Node starts from it: gives the bundle a `require` of
 * the blob's directory (the snapshot's own loads only Node's modules), makes `process.argv`
 * what a script sees, and runs `main`; or runs the CLI from dist/ when the snapshot is not of
 * what is there (a tsc run since `npm run build`, or the tree moved since).
 */
export function fromSnapshot(main: () => void, useRequire: (require: NodeJS.Require) => void): void {
  deferredExtraCaCerts(process.env, () => require('node:tls') as typeof import('node:tls'));
  const blob = path.resolve(process.execArgv[process.execArgv.indexOf('--snapshot-blob') + 1]);
  const dir = path.dirname(blob);
  // Not imported: Node does not vouch for its module loader's state in a snapshot.
  const { createRequire } = require('node:module') as typeof import('node:module');
  useRequire(createRequire(path.join(dir, 'client.bundle.js')));
  process.argv.splice(1, 0, path.join(dir, '..', '..', 'bin', 'causeway'));
  if (dir === __dirname && current(dir, fs.statSync(blob).mtimeMs)) main();
  else require(path.join(dir, 'main.js'));
}

/** No dist/ file the bundle holds is newer than the snapshot. */
function current(dir: string, written: number): boolean {
  try {
    const { inputs } = JSON.parse(fs.readFileSync(path.join(dir, 'client.bundle.json'), 'utf8')) as { inputs: string[] };
    return inputs.every((input) => (fs.statSync(path.join(dir, '..', input), { throwIfNoEntry: false })?.mtimeMs ?? Infinity) <= written);
  } catch {
    return false;
  }
}
