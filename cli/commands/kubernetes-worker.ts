import os from 'node:os';
import type { Command } from 'commander';
import { causewayHome, readEnv } from '../../common/config';
import { createLogger } from '../../common/logger';
import { parseDuration } from '../../schemas';
import { startKubernetesWorker } from '../../workers/kubernetes';
import { resolveEndpoints } from '../dev/stack';
import { CliError, say } from '../output';

interface Opts {
  name?: string;
  tag: string[];
  namespace: string;
  kubeconfig?: string;
  context?: string;
  agentImage?: string;
  defaultImage?: string;
  gracePeriod: string;
}

export function registerKubernetesWorker(program: Command): void {
  program
    .command('kubernetes-worker')
    .description('run a kubernetes-runtime worker in the foreground (each step runs as a pod in one namespace)')
    .requiredOption('--namespace <ns>', 'the namespace step pods run in (one worker = one cluster + namespace)', process.env.POD_NAMESPACE)
    .option('--name <name>', 'worker name; keep it stable so a restarted worker re-attaches to its pods')
    .option('--tag <tag>', 'worker tag that steps may select with `tags:` (also a node selector); repeatable', (v: string, p: string[]) => [...p, v], [])
    .option('--kubeconfig <file>', 'kubeconfig file (default: in-cluster service account, else KUBECONFIG / ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context (default: its current-context)')
    .option('--agent-image <ref>', 'image of the input-fetcher/output-streamer', process.env.CAUSEWAY_AGENT_IMAGE)
    .option('--default-image <ref>', 'image for tasks without image_resource or image')
    .option('--grace-period <seconds>', 'SIGTERM → SIGKILL grace of an aborted step’s pod', '10')
    .addHelpText(
      'after',
      `
Connects to TEMPORAL_ADDRESS / NATS_URL. Needs the Role in deploy/worker/role.yaml in its
namespace. Stopping the worker leaves running pods alone; a worker started again with the
same name re-attaches to them. See docs/kubernetes.md.

Example:
  causeway kubernetes-worker --namespace ci --name k8s-ci --tag linux`,
    )
    .action(async (opts: Opts) => {
      const env = readEnv();
      const endpoints = resolveEndpoints();
      if (!endpoints) throw new CliError('no Temporal/NATS to connect to', 'set TEMPORAL_ADDRESS and NATS_URL');
      const name = opts.name ?? env.CAUSEWAY_WORKER_NAME ?? `k8s-${opts.namespace}-${os.hostname()}`.replace(/[^A-Za-z0-9_-]/g, '-');
      if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new CliError(`--name ${name}: use letters, digits, _ and - only`);
      const grace = Number(opts.gracePeriod);
      if (!Number.isInteger(grace) || grace < 0) throw new CliError(`--grace-period ${opts.gracePeriod}: a whole number of seconds`);
      const worker = await startKubernetesWorker({
        temporalAddress: endpoints.temporalAddress,
        namespace: env.TEMPORAL_NAMESPACE,
        natsUrl: endpoints.natsUrl,
        home: causewayHome(env),
        name,
        tags: opts.tag,
        taskQueue: env.CAUSEWAY_TASK_QUEUE,
        logMaxAgeSeconds: Number(env.CAUSEWAY_LOG_MAX_AGE),
        kubernetes: {
          namespace: opts.namespace,
          kubeconfig: opts.kubeconfig,
          context: opts.context,
          agentImage: opts.agentImage,
          defaultImage: opts.defaultImage,
          graceSeconds: grace,
        },
        reconcile: { intervalMs: parseDuration(env.CAUSEWAY_RECONCILE_INTERVAL) },
        log: createLogger('worker'),
      });
      say(`kubernetes worker ${worker.name} (namespace ${opts.namespace}) polling ${worker.taskQueue}; Ctrl-C stops it (running pods keep running)`);
      process.once('SIGINT', () => void worker.shutdown());
      process.once('SIGTERM', () => void worker.shutdown());
      await worker.done;
    });
}
