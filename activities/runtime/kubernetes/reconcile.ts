// The kubernetes runtime's reconciler: a build that ended without its own teardown (e.g.
// `temporal workflow terminate`, which runs no workflow code, so no finishBuild) leaves its
// anchor ConfigMap, and with it its pods and Secret. A periodic pass lists this worker's
// anchors by label (the one list the runtime makes, never per step), asks Temporal which
// builds are closed, and deletes their anchors; the garbage collector does the rest.
import type { Client } from '@temporalio/client';
import { LABELS, MANAGED_BY, labelValue } from './pod';
import type { KubeApi } from './api';

export interface KubernetesReconcileReport {
  /** builds whose anchor was deleted (closed, or unknown to Temporal) */
  deleted: string[];
  /** builds still running, left alone */
  running: string[];
}

export const BUILD_ID_ANNOTATION = 'causeway.dev/build-id';

export async function reconcileKubernetes(
  rt: KubeApi,
  client: Client,
  opts: { dryRun?: boolean } = {},
): Promise<KubernetesReconcileReport> {
  const report: KubernetesReconcileReport = { deleted: [], running: [] };
  rt.calls.list++;
  const anchors = await rt.core.listNamespacedConfigMap({
    namespace: rt.namespace,
    labelSelector: `${LABELS.managedBy}=${MANAGED_BY},${LABELS.component}=anchor,${LABELS.worker}=${labelValue(rt.worker)}`,
  });
  for (const cm of anchors.items) {
    const buildId = cm.metadata?.annotations?.[BUILD_ID_ANNOTATION] ?? cm.data?.build;
    if (!buildId) continue;
    if (await isRunning(client, buildId)) {
      report.running.push(buildId);
      continue;
    }
    report.deleted.push(buildId);
    if (!opts.dryRun) await rt.deleteBuild(buildId);
  }
  return report;
}

async function isRunning(client: Client, buildId: string): Promise<boolean> {
  try {
    return (await client.workflow.getHandle(buildId).describe()).status.name === 'RUNNING';
  } catch (err) {
    // A build Temporal no longer knows (history past retention) is not running.
    if ((err as Error).name === 'WorkflowNotFoundError') return false;
    throw err;
  }
}
