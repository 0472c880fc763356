import type { TaskStep } from '../../schemas/compiled';

/**
 * A busybox `true` task: the step the API-level tests and benchmarks run by the hundred; on the
 * real node, `image` (the node registry's busybox) and `script` (run by `sh -c`) instead.
 */
export function trueTaskStep(i: number, outputs: string[] = [], real?: { image: string; script: string; task?: string }): TaskStep {
  const [repository, tag] = real ? real.image.split(/:(?=[^:]+$)/) : ['busybox', '1.37'];
  return {
    kind: 'task',
    id: `plan.${i}`,
    task: real?.task ?? `t${i}`,
    params: {},
    vars: {},
    inputMapping: {},
    outputMapping: {},
    privileged: false,
    config: {
      image_resource: { type: 'registry-image', source: { repository, tag } },
      inputs: [],
      outputs: outputs.map((name) => ({ name })),
      caches: [],
      params: {},
      run: real ? { path: 'sh', args: ['-c', real.script] } : { path: 'true', args: [] },
    },
  };
}
