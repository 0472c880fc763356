// Artifact references of this runtime: an output of a producer pod, which its output-streamer
// serves (docs/kubernetes.md, "Artifacts"), named by the pod and the output's path in its work dir.
import { StepErrored } from '../../errors';
import type { ArtifactRef, PodArtifactRef } from '../../types';
import type { MappedInput } from '../types';
import type { KubeApi } from './api';
import { STREAMER_PORT, type InputSource } from './pod';

export function podArtifact(worker: string, pod: string, path: string): PodArtifactRef {
  return { kind: 'pod', worker, pod, path };
}

/** The output-streamer's URL of an output (and of one file in it, for `file:` configs); see the agent protocol. */
export function streamerUrl(ip: string, path: string, file?: string): string {
  const host = ip.includes(':') ? `[${ip}]` : ip;
  const url = `http://${host}:${STREAMER_PORT}/artifacts/${path.split('/').map(encodeURIComponent).join('/')}`;
  return file === undefined ? url : `${url}?file=${encodeURIComponent(file)}`;
}

/**
 * Where each input of a step or service pod comes from: the producer pod's output-streamer, or
 * the worker's upload server for an upload. `owner` names the consumer in errors (`task t`).
 */
export async function inputSources(rt: KubeApi, buildId: string, owner: string, inputs: MappedInput[]): Promise<InputSource[]> {
  const sources: InputSource[] = [];
  for (const { name, path, source, ref } of inputs) {
    if (ref.kind !== 'pod') {
      // Not in a pod: an upload (`-i`) on the worker's disk, which pods fetch from the worker.
      sources.push({ name, path, url: uploadUrl(rt, buildId, `${owner}: input ${source}`, source, ref) });
      continue;
    }
    const ip = await rt.producerIp(ref.pod, `${owner}: input ${source}`);
    sources.push({ name, path, url: streamerUrl(ip, ref.path) });
  }
  return sources;
}

/** Where a consumer pod fetches an upload from: the worker's upload server, or an error saying how to get one. */
function uploadUrl(rt: KubeApi, buildId: string, what: string, source: string, ref: ArtifactRef): string {
  if (!rt.uploads?.isUpload(buildId, source, ref)) {
    throw new StepErrored(
      `${what} is on worker ${ref.worker}'s disk (${ref.path}), not in a pod of this cluster, and is not an upload this worker could serve`,
    );
  }
  const url = rt.uploads.urlFor(buildId, source);
  if (!url) {
    throw new StepErrored(
      `${what} was uploaded (-i) to worker ${rt.worker}, which serves uploads to pods only with an upload address: start it with --upload-address <an address pods can reach> (deploy/worker/deployment.yaml passes its pod IP)`,
    );
  }
  return url;
}
