// The in-memory fake runtime (Concourse's runtime/runtimetest): the Runtime interface with
// `sh -c SCRIPT` tasks and services interpreted in memory (shell.ts), artifacts as file maps,
// services at made-up addresses. The step layer, the activities and the workflows above it are
// the real ones, against the real Temporal and NATS: the workflow-semantics tests run on it
// fast and without spawning anything. Scripting a step is writing its script: `echo` for log
// lines, `exit N` for its status, `echo x > out/f` for output files, `sleep N` for its duration
// (`sleep 1000` hangs until an abort signals it).
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import { interpolateServices, serviceEnv, type ServiceAddress } from '../../common/services';
import { finishBuild } from '../../activities/build';
import type { ActivityDeps } from '../../activities/deps';
import { ServiceFailed, StepErrored } from '../../activities/errors';
import { heartbeating } from '../../activities/heartbeat';
import { mapServiceInputs } from '../../activities/step/service-inputs';
import type { LogPiece, Runtime, TaskHandle } from '../../activities/runtime/types';
import type { ArtifactRef, ServiceRef } from '../../activities/types';
import type { ServiceConfig } from '../../schemas/compiled';
import { FakeProcess, normal } from './shell';

/** What the fake runtime holds: artifacts (an id -> its files) and the tasks and services it runs. */
export interface FakeState {
  artifacts: Map<string, Map<string, string>>;
  tasks: Map<string, FakeProcess>;
  services: Map<string, FakeService>;
  /** files at absolute paths, shared by every script: what a test observes its steps through */
  host: Map<string, string>;
}

export interface FakeService {
  address: ServiceAddress;
  config: ServiceConfig;
  env: Record<string, string>;
  process: FakeProcess;
}

export function fakeState(): FakeState {
  return { artifacts: new Map(), tasks: new Map(), services: new Map(), host: new Map() };
}

const PREFIX = 'fake:';

/** The script of `sh -c SCRIPT`, or why the fake runtime cannot run this command. */
function scriptOf(what: string, run: { path: string; args: string[] }): string {
  if (run.path === 'sh' && run.args[0] === '-c' && run.args.length >= 2) return run.args[1];
  throw new StepErrored(`${what}: the fake runtime runs only \`sh -c SCRIPT\` (this one runs ${[run.path, ...run.args].join(' ')})`);
}

/** The files of an artifact, by their paths inside it. */
function filesOf(state: FakeState, ref: ArtifactRef, what: string): Map<string, string> {
  const files = state.artifacts.get(ref.path);
  if (!files) throw new StepErrored(`${what}: the fake runtime holds no artifact ${ref.path}`);
  return files;
}

function serviceKey(ref: ServiceRef): string {
  return `${ref.buildId}/${ref.runId}/${ref.scopeStepId}/${ref.runKey}/${ref.name}`;
}

export function fakeRuntime(deps: ActivityDeps, state: FakeState = fakeState()): Runtime {
  const readFile = (ref: ArtifactRef, rel: string, what: string): string => {
    const content = filesOf(state, ref, what).get(normal(rel));
    if (content === undefined) throw new StepErrored(`${what}: no file ${rel} in the artifact`);
    return content;
  };
  return {
    releasesArtifacts: false,
    runsContainers: false,
    runsHostScripts: true,
    async findOrStartTask(task, io): Promise<TaskHandle> {
      const { req } = task;
      const key = `${req.buildId}/${req.runId}/${req.step.id}/${req.runKey}`;
      let proc = state.tasks.get(key);
      const reattached = proc !== undefined;
      const outputs: Record<string, ArtifactRef> = {};
      if (!proc) {
        const { config, inputs } = await task.resolve();
        const script = scriptOf(`task ${req.step.task}`, config.run);
        const work = new Map<string, string>();
        for (const input of inputs)
          for (const [rel, content] of filesOf(state, input.ref, `task ${req.step.task}: input ${input.source}`))
            work.set(normal(`${input.path}/${rel}`), content);
        if (config.image_resource || req.step.image) io.note('the fake runtime runs no image');
        proc = new FakeProcess(script, { ...serviceEnv(req.services ?? {}), ...config.params, ...req.step.params }, work, state.host);
        state.tasks.set(key, proc);
        for (const output of config.outputs) {
          const name = req.step.outputMapping[output.name] ?? output.name;
          outputs[name] = { kind: 'dir', worker: deps.workerName, path: `${PREFIX}${key}/${output.name}` };
        }
        // The outputs are what the script left under their paths when it ends.
        const declared = config.outputs;
        const files = work;
        void proc.done.then(() => {
          for (const output of declared) {
            const dir = normal(output.path ?? output.name);
            const held = new Map<string, string>();
            for (const [rel, content] of files) if (rel.startsWith(`${dir}/`)) held.set(rel.slice(dir.length + 1), content);
            state.artifacts.set(`${PREFIX}${key}/${output.name}`, held);
          }
        });
      }
      const running = proc;
      return {
        reattached,
        wait: async (stop) => {
          const code = await Promise.race([
            running.done,
            new Promise<undefined>((resolve) => stop.addEventListener('abort', () => resolve(undefined), { once: true })),
          ]);
          if (code === undefined) return undefined;
          // Let the outputs' collection (queued on the same promise) run first.
          await Promise.resolve();
          return { exitCode: code, outputs };
        },
        readLogs: async (from) => {
          const pieces: LogPiece[] = [];
          for (const stream of ['stdout', 'stderr'] as const) {
            const all = running.output(stream);
            const offset = from[stream] ?? 0;
            if (all.length > offset) pieces.push({ stream, offset, data: all.subarray(offset) });
          }
          return pieces;
        },
        signal: async (signal) => running.signal(signal),
      };
    },
    readArtifactFile: async ({ ref, rel, artifact }, what) =>
      Readable.from([Buffer.from(readFile(ref, rel, `${what}: artifact ${artifact}`))]),
    releaseArtifacts: async () => undefined,
    finishBuild: async (req) => {
      if (Object.keys(req.exports).length > 0) throw new StepErrored('the fake runtime cannot export artifacts (-o)');
      await finishBuild(deps, req);
    },
    services: {
      async startService(req) {
        const key = serviceKey(req);
        const running = state.services.get(key);
        if (running) return { address: running.address, offsets: { stdout: 0, stderr: 0, notes: 0 } };
        const { config } = req.spec;
        const names = config.ports.map((p) => p.name);
        const address: ServiceAddress = {
          name: req.name,
          host: `${req.name}.${req.scopeStepId}.fake`,
          ports: Object.fromEntries(config.ports.map((p) => [p.name, p.number])),
          primaryPort: names.includes('default') ? 'default' : names[0],
        };
        const scope = { ...req.scope, [req.name]: address };
        const spec = withAddresses(req.name, { config, params: req.spec.params }, scope);
        const script = scriptOf(`service ${req.name}`, spec.config.run);
        const env = { ...spec.config.params, ...spec.params, ...serviceEnv({ [req.name]: address }) };
        const work = new Map<string, string>();
        for (const input of mapServiceInputs(req, spec.config))
          for (const [rel, content] of filesOf(state, input.ref, `service ${req.name}: input ${input.source}`))
            work.set(normal(`${input.path}/${rel}`), content);
        state.services.set(key, { address, config: spec.config, env, process: new FakeProcess(script, env, work, state.host) });
        return { address, offsets: { stdout: 0, stderr: 0, notes: 0 } };
      },
      probeService: (req) =>
        heartbeating(async () => {
          const svc = state.services.get(serviceKey(req));
          if (!svc) throw new ServiceFailed(`service ${req.name} was not started`);
          const stop = new AbortController();
          const exited = svc.process.done.then((code): never => {
            throw new ServiceFailed(
              `service ${req.name} exited with status ${code} before it was ready; its last lines:\n${svc.process.output('stdout')}${svc.process.output('stderr')}`,
            );
          });
          // The service ending after it was ready is the supervisor's to report.
          exited.catch(() => undefined);
          // An abort reaches a probe that never passes (the step layer's cancellation, as on a real runtime).
          const cancelled = Context.current().cancelled;
          try {
            await Promise.race([probe(req.name, svc, stop.signal), exited, cancelled]);
          } finally {
            stop.abort();
          }
          return req.offsets;
        }),
      superviseService: (req) =>
        heartbeating(async () => {
          const svc = state.services.get(serviceKey(req));
          return svc ? { exitCode: await svc.process.done } : {};
        }),
      async stopService(req) {
        const key = serviceKey(req);
        state.services.get(key)?.process.signal('SIGTERM');
        state.services.delete(key);
      },
    },
  };
}

/**
 * The startup probe every period until it passes, failureThreshold failures in a row failing the
 * service (as the real runtimes count); without one, the service is ready at once.
 */
async function probe(name: string, svc: FakeService, stop: AbortSignal): Promise<void> {
  const config = svc.config.startup_probe;
  if (!config) return;
  const script = scriptOf(`service ${name}: startup probe`, config.run);
  let last = '';
  for (let failures = 0; failures < config.failureThreshold; failures++) {
    const run = new FakeProcess(script, svc.env, new Map());
    stop.addEventListener('abort', () => run.signal('SIGKILL'), { once: true });
    if ((await run.done) === 0) return;
    if (stop.aborted) return;
    last = `${run.output('stdout')}${run.output('stderr')}`.trim();
    await delay(config.periodSeconds * 1000, undefined, { signal: stop }).catch(() => undefined);
  }
  throw new ServiceFailed(
    `service ${name}: startup probe \`${[config.run.path, ...config.run.args].join(' ')}\` failed ${config.failureThreshold} times` +
      ` (every ${config.periodSeconds}s); its last output: ${last || '(none)'}`,
  );
}

function withAddresses<T>(name: string, value: T, scope: Record<string, ServiceAddress>): T {
  try {
    return interpolateServices(value, scope);
  } catch (err) {
    throw new ServiceFailed(`service ${name}: ${(err as Error).message}`);
  }
}
