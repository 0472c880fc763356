import { bundleWorkflowCode, type WorkflowBundle } from '@temporalio/worker';
import { FAILURE_CONVERTER_PATH } from '../common/codec';

/** The bundler's logger for runs that bundle once up front (tests, benchmarks): its progress lines are noise there. */
export const SILENT_BUNDLER_LOGGER = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/** Modules every workflow of a worker thread shares instead of evaluating them again (workflows/preload.ts). */
export const WORKFLOW_BUNDLER_OPTIONS = { preloadModules: [require.resolve('../workflows/preload')] };

/** The build workflows bundled as a worker bundles them (failures encoded by the same converter), quietly. */
export function bundleBuildWorkflows(): Promise<WorkflowBundle> {
  return bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows'),
    failureConverterPath: FAILURE_CONVERTER_PATH,
    ...WORKFLOW_BUNDLER_OPTIONS,
    logger: SILENT_BUNDLER_LOGGER,
  });
}
