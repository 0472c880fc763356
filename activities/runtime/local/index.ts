// The local runtime: steps are processes on this host, artifacts directories on its disk.
import { finishBuild } from '../../build';
import { readDirArtifactFile } from './host-task';
import type { ActivityDeps } from '../../deps';
import type { Runtime } from '../types';
import { canIsolate, releaseBuildUser } from './isolation';
import { removeNetwork } from './network';
import { startLocalService, stopLocalService, superviseLocalService } from './service';
import { probeLocalService } from './service-readiness';
import { warmUpSpawner } from './spawner';
import { findOrStartLocalTask } from './task';

export function localRuntime(deps: ActivityDeps): Runtime {
  // The process helper starts with the worker, not with its first step.
  warmUpSpawner();
  return {
    // Artifact directories stay for `causeway retry`; the reconciler deletes them after their retention.
    releasesArtifacts: false,
    runsContainers: false,
    runsHostScripts: true,
    findOrStartTask: (task, io) => findOrStartLocalTask(deps, task, io),
    readArtifactFile: readDirArtifactFile('local'),
    releaseArtifacts: async () => undefined,
    finishBuild: async (req) => {
      // Every service was stopped by its scope's teardown before the build ends.
      await removeNetwork(req.buildId);
      await finishBuild(deps, req);
      // After the exports: the build's uid is given back only once nothing of the build is read any more.
      if (canIsolate()) await releaseBuildUser(deps.home, req.buildId);
    },
    services: {
      startService: (req) => startLocalService(deps, req),
      probeService: (req) => probeLocalService(deps, req),
      superviseService: (req) => superviseLocalService(deps, req),
      stopService: (req) => stopLocalService(deps, req),
    },
  };
}
