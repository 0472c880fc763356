// What every part of the containerd runtime shares on one worker: the activities' dependencies,
// the ctr client, containerd's API, the image store, the default image, and facts read once from the machine.
import fs from 'node:fs/promises';
import type { ActivityDeps } from '../../deps';
import type { ContainerdApi } from './api';
import type { Ctr } from './ctr';
import type { ImageStore } from './image';
import { ensureKeeper } from './keeper';
import { SpareRoots } from './spare';
import { capabilitiesOf, type OciSpec } from './spec';

export interface ContainerdContext {
  deps: ActivityDeps;
  ctr: Ctr;
  /** containerd's API: one connection per worker, for what every step does */
  api: ContainerdApi;
  images: ImageStore;
  /** the image of a step without image_resource or image */
  defaultImage?: string;
  /** containerd's default OCI spec (`ctr oci spec`), which every container's starts from */
  baseSpec(): Promise<OciSpec>;
  /** the capabilities this worker holds: what a privileged step gets */
  hostCapabilities(): Promise<string[]>;
  /**
   * Runs a removal after the step's result is out: an ended container's task, container, root and
   * snapshot are no part of its result, and the next step need not wait for them.
   */
  later(buildId: string, work: () => Promise<void>): void;
  /** Resolves when the build's deferred removals are done (its end waits, then removes what is left). */
  settle(buildId: string): Promise<void>;
  /** roots prepared ahead for a build's next task (spare.ts) */
  spares: SpareRoots;
  /**
   * The build's shim group, once its keeper is there (keeper.ts): looked up in containerd on each
   * use, since another worker's finishBuild or the reconciler may have removed it.
   */
  shimGroup(buildId: string): Promise<string>;
}

export function containerdContext(
  deps: ActivityDeps,
  ctr: Ctr,
  api: ContainerdApi,
  images: ImageStore,
  defaultImage?: string,
): ContainerdContext {
  let base: Promise<OciSpec> | undefined;
  let caps: Promise<string[]> | undefined;
  const pending = new Map<string, Set<Promise<void>>>();
  /** keepers being looked up or started: concurrent steps of a build start one */
  const keepers = new Map<string, Promise<string>>();
  const later = (buildId: string, work: () => Promise<void>): void => {
    const set = pending.get(buildId) ?? new Set();
    pending.set(buildId, set);
    const done: Promise<void> = work()
      .catch((err: unknown) => deps.log.warn({ err, buildId }, 'removing an ended container failed; the build’s end removes it'))
      .finally(() => {
        set.delete(done);
        if (set.size === 0) pending.delete(buildId);
      });
    set.add(done);
  };
  const baseSpec = () => (base ??= ctr.run(['oci', 'spec'], "containerd's default spec").then((t) => JSON.parse(t) as OciSpec));
  return {
    deps,
    ctr,
    api,
    images,
    defaultImage,
    baseSpec,
    hostCapabilities: () => (caps ??= fs.readFile('/proc/self/status', 'utf8').then(capabilitiesOf)),
    later,
    async settle(buildId) {
      await Promise.all(pending.get(buildId) ?? []);
    },
    shimGroup(buildId) {
      let group = keepers.get(buildId);
      if (!group) {
        group = ensureKeeper(api, baseSpec, deps.home, buildId).finally(() => keepers.delete(buildId));
        keepers.set(buildId, group);
      }
      return group;
    },
    spares: new SpareRoots(api, deps.home, later),
  };
}
