// The object store the CLI and the workers exchange `-i` uploads and `-o` exports through:
// below the activities and the CLI, which both use it.
import fs from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { NatsConnection } from '@nats-io/transport-node';
import { Objm, type ObjectStore } from '@nats-io/obj';
import * as tar from 'tar';

/** The object store bucket the CLI uploads inputs to and downloads outputs from. */
export const TRANSFER_BUCKET = 'causeway-transfers';
const TRANSFER_TTL_NANOS = 24 * 3600 * 1_000_000_000;

export const transferKeys = {
  input: (buildId: string, name: string) => `${buildId}/inputs/${name}`,
  output: (buildId: string, name: string) => `${buildId}/outputs/${name}`,
};

export async function transferBucket(nc: NatsConnection): Promise<ObjectStore> {
  return new Objm(nc).create(TRANSFER_BUCKET, { ttl: TRANSFER_TTL_NANOS });
}

/** Packs a directory as a tar stream into the object store. `files` limits it to those paths (git-tracked ones). */
export async function putDirectory(store: ObjectStore, key: string, dir: string, files?: string[]): Promise<void> {
  // tar's stream is a minipass, not a node Readable; Readable.from adapts its async iterator.
  const pack = Readable.from(tar.c({ cwd: dir, portable: true }, files && files.length > 0 ? files : ['.']));
  await store.put({ name: key }, Readable.toWeb(pack) as ReadableStream<Uint8Array>);
}

/** Unpacks a tar from the object store into a directory; false when there is no such object. */
export async function getDirectory(store: ObjectStore, key: string, dir: string): Promise<boolean> {
  const result = await store.get(key);
  if (!result) return false;
  await fs.mkdir(dir, { recursive: true });
  await pipeline(Readable.fromWeb(result.data as import('node:stream/web').ReadableStream<Uint8Array>), tar.x({ cwd: dir }));
  const error = await result.error;
  if (error) throw error;
  return true;
}
