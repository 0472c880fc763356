// Artifact references of this runtime: an output of a producer pod, which its output-streamer
// serves (docs/kubernetes.md, "Artifacts"), named by the pod and the output's path in its work dir.
import type { PodArtifactRef } from '../../types';
import { STREAMER_PORT } from './pod';

export function podArtifact(worker: string, pod: string, path: string): PodArtifactRef {
  return { kind: 'pod', worker, pod, path };
}

/** The output-streamer's URL of an output (and of one file in it, for `file:` configs); see the agent protocol. */
export function streamerUrl(ip: string, path: string, file?: string): string {
  const host = ip.includes(':') ? `[${ip}]` : ip;
  const url = `http://${host}:${STREAMER_PORT}/artifacts/${path.split('/').map(encodeURIComponent).join('/')}`;
  return file === undefined ? url : `${url}?file=${encodeURIComponent(file)}`;
}
