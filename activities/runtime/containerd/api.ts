// containerd's gRPC API over its socket, for a step's hot path (snapshot, container, task, wait,
// kill, removal): one connection per worker instead of a `ctr` process per operation, and a
// task's exit as the answer to one Wait call instead of polling. Only the messages and fields
// used here are declared below; their names and numbers are containerd 1.6's API
// (containerd.services.{containers,tasks,snapshots}.v1), so the wire format is the same.
import { constants as osConstants } from 'node:os';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import type { TaskSignal } from '../types';
import { CONTAINERD_NAMESPACE } from './ctr';

const PROTO = `
syntax = "proto3";
package causeway.containerd;
message Any { string type_url = 1; bytes value = 2; }
message Empty {}
message Mount { string type = 1; string source = 2; string target = 3; repeated string options = 4; }
message Runtime { string name = 1; Any options = 2; }
message Container { string id = 1; map<string, string> labels = 2; string image = 3; Runtime runtime = 4; Any spec = 5; }
message CreateContainerRequest { Container container = 1; }
message CreateContainerResponse { Container container = 1; }
message DeleteContainerRequest { string id = 1; }
message ListContainersRequest { repeated string filters = 1; }
message ListContainersResponse { repeated Container containers = 1; }
message CreateTaskRequest { string container_id = 1; repeated Mount rootfs = 3; string stdin = 4; string stdout = 5; string stderr = 6; }
message CreateTaskResponse { string container_id = 1; uint32 pid = 2; }
message StartRequest { string container_id = 1; string exec_id = 2; }
message StartResponse { uint32 pid = 1; }
message DeleteTaskRequest { string container_id = 1; }
message DeleteResponse { string id = 1; uint32 pid = 2; uint32 exit_status = 3; }
message GetRequest { string container_id = 1; string exec_id = 2; }
message Process { string container_id = 1; string id = 2; uint32 pid = 3; uint32 status = 4; uint32 exit_status = 9; }
message GetResponse { Process process = 1; }
message KillRequest { string container_id = 1; string exec_id = 2; uint32 signal = 3; bool all = 4; }
message WaitRequest { string container_id = 1; string exec_id = 2; }
message WaitResponse { uint32 exit_status = 1; }
message PrepareSnapshotRequest { string snapshotter = 1; string key = 2; string parent = 3; map<string, string> labels = 4; }
message PrepareSnapshotResponse { repeated Mount mounts = 1; }
message RemoveSnapshotRequest { string snapshotter = 1; string key = 2; }
message ListSnapshotsRequest { string snapshotter = 1; repeated string filters = 2; }
message RuncOptions { string binary_name = 6; }
message SnapshotInfo { string name = 1; map<string, string> labels = 6; }
message ListSnapshotsResponse { repeated SnapshotInfo info = 1; }
`;

const root = protobuf.parse(PROTO, { keepCase: true }).root;
const type = (name: string) => root.lookupType(`causeway.containerd.${name}`);

/** containerd's type URL for an OCI runtime spec carried as JSON in an Any. */
const SPEC_TYPE_URL = 'types.containerd.io/opencontainers/runtime-spec/1/Spec';
const RUNTIME = 'io.containerd.runc.v2';
/** The runc v2 shim's options (containerd.runc.v1.Options): only BinaryName, the OCI runtime it runs. */
const RUNC_OPTIONS_TYPE_URL = 'containerd.runc.v1.Options';
const SNAPSHOTTER = 'overlayfs';

/** A task's state (containerd.v1.types.Status). */
export const TaskStatus = { unknown: 0, created: 1, running: 2, stopped: 3, paused: 4, pausing: 5 } as const;

export interface SnapshotMount {
  type: string;
  source: string;
  options: string[];
}

/** A refusal by containerd, with its gRPC code (NOT_FOUND, ALREADY_EXISTS, ...) and its own words. */
export class ContainerdApiError extends Error {
  constructor(
    message: string,
    readonly code: grpc.status,
  ) {
    super(message);
    this.name = 'ContainerdApiError';
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof ContainerdApiError && err.code === grpc.status.NOT_FOUND;
}

export class ContainerdApi {
  private readonly client: grpc.Client;
  private readonly metadata = new grpc.Metadata();
  private readonly runtime: { name: string; options?: { type_url: string; value: Buffer } };

  /** `ociBinary`: the OCI runtime the shim runs for the containers this creates (oci-runtime.ts); runc when undefined. */
  constructor(socket: string, ociBinary?: string) {
    this.runtime = {
      name: RUNTIME,
      ...(ociBinary
        ? {
            options: {
              type_url: RUNC_OPTIONS_TYPE_URL,
              value: Buffer.from(type('RuncOptions').encode({ binary_name: ociBinary }).finish()),
            },
          }
        : {}),
    };
    this.client = new grpc.Client(`unix://${socket}`, grpc.credentials.createInsecure());
    this.metadata.set('containerd-namespace', CONTAINERD_NAMESPACE);
  }

  close(): void {
    this.client.close();
  }

  private call<T>(service: string, method: string, req: string, res: string, body: object, what: string, signal?: AbortSignal): Promise<T> {
    const reqType = type(req);
    const resType = type(res);
    return new Promise<T>((resolve, reject) => {
      const call = this.client.makeUnaryRequest(
        `/containerd.services.${service}/${method}`,
        (m: object) => Buffer.from(reqType.encode(reqType.fromObject(m)).finish()),
        (b: Buffer) => resType.toObject(resType.decode(b), { longs: Number, defaults: true, bytes: Buffer }) as T,
        body,
        this.metadata,
        {},
        (err, value) => {
          signal?.removeEventListener('abort', cancel);
          if (err) reject(new ContainerdApiError(`${what}: ${err.details || err.message}`, err.code));
          else resolve(value as T);
        },
      );
      const cancel = () => call.cancel();
      if (signal?.aborted) cancel();
      else signal?.addEventListener('abort', cancel, { once: true });
    });
  }

  /** A writable snapshot of the image's layers, with its labels set at once (no unlabelled moment for the GC). */
  async prepareSnapshot(key: string, parent: string, labels: Record<string, string>): Promise<SnapshotMount[]> {
    const r = await this.call<{ mounts: SnapshotMount[] }>(
      'snapshots.v1.Snapshots',
      'Prepare',
      'PrepareSnapshotRequest',
      'PrepareSnapshotResponse',
      { snapshotter: SNAPSHOTTER, key, parent, labels },
      `preparing snapshot ${key}`,
    );
    return r.mounts;
  }

  /** The names of the snapshots whose label `label` is `value` (the build's end, the reconciler). */
  listSnapshots(label: string, value: string): Promise<string[]> {
    const reqType = type('ListSnapshotsRequest');
    const resType = type('ListSnapshotsResponse');
    return new Promise<string[]>((resolve, reject) => {
      const names: string[] = [];
      const stream = this.client.makeServerStreamRequest(
        '/containerd.services.snapshots.v1.Snapshots/List',
        (m: object) => Buffer.from(reqType.encode(reqType.fromObject(m)).finish()),
        (b: Buffer) =>
          resType.toObject(resType.decode(b), { defaults: true }) as { info: { name: string; labels: Record<string, string> }[] },
        { snapshotter: SNAPSHOTTER, filters: [`labels."${label}"==${value}`] },
        this.metadata,
        {},
      );
      // Checked here too: the filter is containerd's to apply, the removal is ours.
      stream.on('data', (r: { info: { name: string; labels: Record<string, string> }[] }) => {
        for (const i of r.info) if (i.labels[label] === value) names.push(i.name);
      });
      stream.on('error', (err: grpc.ServiceError) =>
        reject(new ContainerdApiError(`listing snapshots: ${err.details || err.message}`, err.code)),
      );
      stream.on('end', () => resolve(names));
    });
  }

  async removeSnapshot(key: string): Promise<void> {
    await this.call(
      'snapshots.v1.Snapshots',
      'Remove',
      'RemoveSnapshotRequest',
      'Empty',
      { snapshotter: SNAPSHOTTER, key },
      `removing snapshot ${key}`,
    );
  }

  /** A container running exactly `spec` (its root already mounted at spec.root.path), labelled. */
  async createContainer(id: string, spec: object, labels: Record<string, string>): Promise<void> {
    await this.call(
      'containers.v1.Containers',
      'Create',
      'CreateContainerRequest',
      'CreateContainerResponse',
      {
        container: {
          id,
          labels,
          runtime: this.runtime,
          spec: { type_url: SPEC_TYPE_URL, value: Buffer.from(JSON.stringify(spec)) },
        },
      },
      `creating container ${id}`,
    );
  }

  /** The ids of the containers whose label `label` is `value`. */
  async listContainers(label: string, value: string): Promise<string[]> {
    const r = await this.call<{ containers: { id: string; labels: Record<string, string> }[] }>(
      'containers.v1.Containers',
      'List',
      'ListContainersRequest',
      'ListContainersResponse',
      { filters: [`labels."${label}"==${value}`] },
      'listing containers',
    );
    return r.containers.filter((c) => c.labels[label] === value).map((c) => c.id);
  }

  async deleteContainer(id: string): Promise<void> {
    await this.call('containers.v1.Containers', 'Delete', 'DeleteContainerRequest', 'Empty', { id }, `removing container ${id}`);
  }

  /**
   * The container's task. `stdout` and `stderr` are existing regular files: the shim appends the
   * task's output to each itself (it outlives this worker), with no logger process per task.
   */
  async createTask(id: string, stdout: string, stderr: string): Promise<void> {
    await this.call(
      'tasks.v1.Tasks',
      'Create',
      'CreateTaskRequest',
      'CreateTaskResponse',
      { container_id: id, stdout, stderr },
      `creating the task of ${id}`,
    );
  }

  async startTask(id: string): Promise<void> {
    await this.call('tasks.v1.Tasks', 'Start', 'StartRequest', 'StartResponse', { container_id: id }, `starting the task of ${id}`);
  }

  /** The task's state and exit status; NOT_FOUND when it has none. */
  async getTask(id: string): Promise<{ status: number; exitStatus: number }> {
    const r = await this.call<{ process?: { status: number; exit_status: number } }>(
      'tasks.v1.Tasks',
      'Get',
      'GetRequest',
      'GetResponse',
      { container_id: id },
      `the task of ${id}`,
    );
    return { status: r.process?.status ?? TaskStatus.unknown, exitStatus: r.process?.exit_status ?? 0 };
  }

  /** Resolves with the exit status when the task ends (at once when it has); rejects when `signal` aborts. */
  async waitTask(id: string, signal?: AbortSignal): Promise<number> {
    const r = await this.call<{ exit_status: number }>(
      'tasks.v1.Tasks',
      'Wait',
      'WaitRequest',
      'WaitResponse',
      { container_id: id },
      `waiting for the task of ${id}`,
      signal,
    );
    return r.exit_status;
  }

  /** A signal to every process of the container. */
  async killTask(id: string, signal: TaskSignal): Promise<void> {
    await this.call(
      'tasks.v1.Tasks',
      'Kill',
      'KillRequest',
      'Empty',
      { container_id: id, signal: osConstants.signals[signal], all: true },
      `signalling container ${id}`,
    );
  }

  async deleteTask(id: string): Promise<void> {
    await this.call('tasks.v1.Tasks', 'Delete', 'DeleteTaskRequest', 'DeleteResponse', { container_id: id }, `removing the task of ${id}`);
  }
}
