// The state a local service's activities share: its directory, the state file startService
// writes and the others read (possibly on a retry, on another worker), its log on NATS, its
// last lines for a failure's message, and the launcher a containerd service replaces the process with.
import fs from 'node:fs/promises';
import path from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { BuildPublisher } from '../../../common/nats';
import { Redactor } from '../../../common/redact';
import type { ServiceAddress } from '../../../common/services';
import type { ServiceConfig } from '../../../schemas/compiled';
import { subjects } from '../../../schemas/messages';
import type { ActivityDeps } from '../../deps';
import { ServiceFailed } from '../../errors';
import type { ServiceLogOffsets, ServiceRef } from '../../types';
import type { ResolvedServiceRequest } from '../types';
import { exitStatus, FILES, findProcess, isAlive, reapGroup, terminate, type StepProcess } from './process';
import { StepLog } from './step-log';
import type { UserIds } from './users';

export const STATE_FILE = 'service.json';
const TAIL_LINES = 20;
/** how often a waiting activity looks for the service's exit and new output */
export const WATCH_MS = 20;

/** What startService decided, read by the activities that follow it (possibly on a retry). */
export interface ServiceState {
  address: ServiceAddress;
  config: ServiceConfig;
  env: Record<string, string>;
  /** where the service's files live: its own directory, or one under /tmp a run.user can reach */
  root: string;
  /** the service's own network namespace, where its probe runs too; absent in loopback mode */
  netns?: string;
  /** the /etc/hosts the service and its probe see: the services in its scope by name */
  hosts?: string;
  /** the uid the service and its probe run as (the build's, or run.user's), its extra groups, and the loader's variables of its env (splitLoaderEnv) */
  runAs?: { ids: UserIds; groups: number[]; loader: Record<string, string> };
}

/** A started service, as each runtime runs it: the local runtime's detached process, or a container (containerd). */
export interface ServiceRun {
  /** what runs it, for the step's note: `pid N`, `container ID` */
  readonly what: string;
  alive(): Promise<boolean>;
  /** its exit status once it ended, as recorded in its directory (by the wrapper, or by `alive` seeing a container's end) */
  exitStatus(): Promise<number | undefined>;
  /** SIGTERM to every process of it, SIGKILL after the grace period */
  terminate(graceMs: number): Promise<'exited' | 'killed'>;
  /** what its main process left running once it ended, killed */
  reap(): void;
}

/** The local runtime's service: its detached wrapper's process group. */
export function processRun(proc: StepProcess): ServiceRun {
  return {
    what: `pid ${proc.pid}`,
    alive: () => isAlive(proc),
    exitStatus: () => exitStatus(proc.dir),
    terminate: (graceMs) => terminate(proc, graceMs),
    reap: () => reapGroup(proc),
  };
}

/**
 * A runtime that runs services as containers (containerd) keeps this lifecycle and replaces the
 * process: run.user is the image's, the container is started, found and stopped its own way,
 * the probe runs inside it.
 */
export interface ServiceLauncher {
  /** prepares the service's container in `dir` (its files in `work`), to be started by `start` */
  prepare(s: {
    req: ResolvedServiceRequest;
    dir: string;
    work: string;
    config: ServiceConfig;
    env: Record<string, string>;
    netns?: string;
    hosts?: string;
    note(text: string): void;
  }): Promise<void>;
  /** starts what prepare made; its output goes to the service's stdout and stderr files in `dir` */
  start(dir: string, buildId: string): Promise<ServiceRun>;
  /** the service an earlier attempt started in `dir` (running or ended), if any */
  find(dir: string): Promise<ServiceRun | undefined>;
  /** the startup probe's command, run inside the service */
  probe(dir: string, command: string[]): string[];
  /** the service was stopped: what its container left on the host goes */
  stopped(dir: string): Promise<void>;
}

/** The service started in `dir`: the launcher's, else the local runtime's process. */
export async function findRun(dir: string, launcher?: ServiceLauncher): Promise<ServiceRun | undefined> {
  if (launcher) return launcher.find(dir);
  const proc = await findProcess(dir);
  return proc && processRun(proc);
}

/** Publishes a service's output on its own subject; StepLog does the offsets and message ids. */
class ServiceLogPublisher extends BuildPublisher {
  constructor(
    nc: NatsConnection,
    private readonly subject: string,
  ) {
    super(nc);
  }

  protected override logSubject(): string {
    return this.subject;
  }
}

export function serviceDir(home: string, ref: ServiceRef): string {
  return path.join(home, 'builds', ref.buildId, ref.runId, 'services', ref.scopeStepId, ref.runKey, ref.name);
}

export function serviceLog(deps: ActivityDeps, ref: ServiceRef, dir: string, offsets?: ServiceLogOffsets, writer = 'run'): StepLog {
  const publisher = new ServiceLogPublisher(deps.nc, subjects.service(ref.buildId, ref.scopeStepId, ref.name));
  const runName = `${ref.runId}/${ref.scopeStepId}/${ref.runKey}/svc/${ref.name}/${writer}`;
  // A service's log is redacted as a task's is: the step layer lists the values (activities/step/service.ts).
  const redactor = new Redactor();
  for (const value of ref.redact ?? []) redactor.add(value);
  return new StepLog(publisher, ref.buildId, ref.scopeStepId, dir, runName, offsets ? { ...offsets } : undefined, redactor);
}

export async function readState(dir: string): Promise<ServiceState | undefined> {
  try {
    return JSON.parse(await fs.readFile(path.join(dir, STATE_FILE), 'utf8')) as ServiceState;
  } catch {
    return undefined;
  }
}

/** The service's last lines of output, for the message of a service that failed. */
export async function tail(dir: string): Promise<string> {
  const parts = await Promise.all(
    [FILES.stdout, FILES.stderr].map((f) =>
      fs.readFile(path.join(dir, f), 'utf8').then(
        (t) => t.split('\n').filter(Boolean).slice(-TAIL_LINES),
        () => [],
      ),
    ),
  );
  const lines = parts.flat();
  return lines.length ? lines.join('\n') : '(no output)';
}

export async function attached(dir: string, name: string, launcher?: ServiceLauncher): Promise<{ run: ServiceRun; state: ServiceState }> {
  const [run, state] = await Promise.all([findRun(dir, launcher), readState(dir)]);
  if (!run || !state) throw new ServiceFailed(`service ${name} was not started (its directory ${dir} has no process)`);
  return { run, state };
}
