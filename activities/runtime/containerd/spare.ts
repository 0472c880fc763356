// Roots prepared ahead: once a task has started, a snapshot of its image is prepared and mounted
// for the build's next task from that image, while this one runs and the workflow schedules the
// next; that task takes it instead of paying containerd's Prepare and the mount on its own path.
// Only a spare is in memory: it is labelled with its build and mounted in the build's directory,
// so the build's end (and the reconciler, after a worker's crash) removes an unused one as it
// removes the build's other snapshots and mounts.
import { createHash, randomUUID } from 'node:crypto';
import path from 'node:path';
import { paths } from '../../deps';
import type { ContainerdApi } from './api';
import { closeToOthers, mountImage, type Rootfs } from './rootfs';

export class SpareRoots {
  private readonly spares = new Map<string, Promise<Rootfs>>();

  constructor(
    private readonly api: ContainerdApi,
    private readonly home: string,
    /** tracks the preparation, so that the build's end waits for it before removing what it made */
    private readonly track: (buildId: string, work: () => Promise<void>) => void,
  ) {}

  /** The build's spare root of the image, when one was prepared; undefined when none is (or its preparation failed). */
  async take(buildId: string, chainId: string): Promise<Rootfs | undefined> {
    const key = `${buildId} ${chainId}`;
    const spare = this.spares.get(key);
    if (!spare) return undefined;
    this.spares.delete(key);
    return spare.catch(() => undefined);
  }

  /** Prepares the build's next root of the image, unless one is waiting. */
  refill(buildId: string, chainId: string): void {
    const key = `${buildId} ${chainId}`;
    if (this.spares.has(key)) return;
    const snapshot = `cw-spare-${createHash('sha256').update(`${buildId}/${chainId}/${randomUUID()}`).digest('hex').slice(0, 32)}`;
    const target = path.join(paths.build(this.home, buildId), 'spare-roots', snapshot);
    // Root's only, as a step's directory (container.ts): the image's files are in it.
    const spare = closeToOthers(path.dirname(target)).then(() => mountImage(this.api, buildId, snapshot, chainId, target));
    this.spares.set(key, spare);
    // A failed one is no step's failure: the next task prepares its own root.
    this.track(buildId, () =>
      spare.then(
        () => undefined,
        () => undefined,
      ),
    );
  }

  /** Forgets the build's spares: its end removed them with its other snapshots. */
  forget(buildId: string): void {
    for (const key of this.spares.keys()) if (key.startsWith(`${buildId} `)) this.spares.delete(key);
  }
}
