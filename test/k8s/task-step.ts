import type { TaskStep } from '../../schemas/compiled';

/** A busybox `true` task: the step the API-level tests and benchmarks run by the hundred. */
export function trueTaskStep(i: number, outputs: string[] = []): TaskStep {
  return {
    kind: 'task',
    id: `plan.${i}`,
    task: `t${i}`,
    params: {},
    vars: {},
    inputMapping: {},
    outputMapping: {},
    privileged: false,
    config: {
      image_resource: { type: 'registry-image', source: { repository: 'busybox', tag: '1.37' } },
      inputs: [],
      outputs: outputs.map((name) => ({ name })),
      caches: [],
      params: {},
      run: { path: 'true', args: [] },
    },
  };
}
