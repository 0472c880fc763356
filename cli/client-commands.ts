import type { CommandTable } from './program';

// The commands that only talk to a stack as a client (no worker SDK, no cluster tooling): cli/client.ts
// runs these, from the bundle bin/causeway loads.
export const CLIENT_COMMANDS = {
  run: [['run'], () => (require('./specs/run') as typeof import('./specs/run')).registerRun],
  execute: [['execute'], () => (require('./specs/execute') as typeof import('./specs/execute')).registerExecute],
  compile: [['compile'], () => (require('./specs/compile') as typeof import('./specs/compile')).registerCompile],
  watch: [['watch'], () => (require('./specs/watch') as typeof import('./specs/watch')).registerWatch],
  abort: [['abort', 'abort-build'], () => (require('./specs/abort') as typeof import('./specs/abort')).registerAbort],
  builds: [['builds', 'status'], () => (require('./specs/builds') as typeof import('./specs/builds')).registerBuilds],
  retry: [['retry'], () => (require('./specs/retry') as typeof import('./specs/retry')).registerRetry],
  pipelines: [
    // fly's names and aliases
    [
      ...[
        'set-pipeline',
        'sp',
        'get-pipeline',
        'gp',
        'pipelines',
        'ps',
        'destroy-pipeline',
        'dp',
        'rename-pipeline',
        'rp',
        'archive-pipeline',
        'ap',
        'pause-pipeline',
        'pp',
      ],
      ...['unpause-pipeline', 'up'],
      ...['jobs', 'js', 'pause-job', 'pj', 'unpause-job', 'uj', 'trigger-job', 'tj', 'rerun-build', 'rb', 'check-resource', 'cr'],
      ...['schedule-job', 'sj'],
      ...['resources', 'rs', 'resource-versions', 'rvs', 'pin-resource', 'pr', 'unpin-resource', 'ur'],
      ...['disable-resource-version', 'drv', 'enable-resource-version', 'erv'],
    ],
    () => (require('./specs/pipelines') as typeof import('./specs/pipelines')).registerPipelines,
  ],
} satisfies Record<string, CommandTable[number]>;
