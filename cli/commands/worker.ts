import os from 'node:os';
import { Option, type Command } from 'commander';
import { causewayHome, readEnv, type Env } from '../../common/config';
import { createLogger } from '../../common/logger';
import { parseDuration } from '../../schemas';
import { startKubernetesWorker } from '../../workers/kubernetes';
import { workerCredentials } from '../../workers/credentials';
import { startLocalWorker, type ContainerdRuntimeOptions, type RunningWorker } from '../../workers/local';
import { installSdkLogger } from '../../workers/sdk-logger';
import { DEV_DEFAULT_IMAGE, devContainerdDir, readContainerd } from '../dev/containerd';
import { resolveEndpoints } from '../dev/stack';
import { CliError, say } from '../output';

interface Opts {
  runtime: 'local' | 'containerd' | 'kubernetes';
  name?: string;
  tag: string[];
  namespace?: string;
  kubeconfig?: string;
  context?: string;
  agentImage?: string;
  defaultImage?: string;
  uploadAddress?: string;
  uploadPort: string;
  gracePeriod: string;
  containerdSocket?: string;
  registryHosts?: string;
  credsFile?: string;
  team?: string;
  redactSecrets: boolean;
}

const KUBERNETES_ONLY = ['namespace', 'kubeconfig', 'context', 'agentImage', 'uploadAddress'] as const;
const CONTAINERD_ONLY = ['containerdSocket', 'registryHosts'] as const;

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description(
      'run a worker in the foreground: steps run as processes on this host (local), as containers (containerd) or as pods in a namespace (kubernetes)',
    )
    .addOption(new Option('--runtime <runtime>', 'where steps run').choices(['local', 'containerd', 'kubernetes']).default('local'))
    .option('--name <name>', 'worker name; keep it stable so a restarted worker picks up its builds')
    .option(
      '--tag <tag>',
      'worker tag that steps may select with `tags:` (kubernetes: also a node selector); repeatable',
      (v: string, p: string[]) => [...p, v],
      [],
    )
    .option(
      '--namespace <ns>',
      'kubernetes: the namespace step pods run in (one worker = one cluster + namespace)',
      process.env.POD_NAMESPACE,
    )
    .option('--kubeconfig <file>', 'kubernetes: kubeconfig file (default: in-cluster service account, else KUBECONFIG / ~/.kube/config)')
    .option('--context <name>', 'kubernetes: kubeconfig context (default: its current-context)')
    .option('--agent-image <ref>', 'kubernetes: image of the input-fetcher/output-streamer', process.env.CAUSEWAY_AGENT_IMAGE)
    .option('--default-image <ref>', 'containerd, kubernetes: image for tasks without image_resource or image')
    .option(
      '--containerd-socket <path>',
      'containerd: the socket of the containerd to use (default: the one `causeway dev up --runtime containerd` started)',
    )
    .option('--registry-hosts <dir>', "containerd: registry mirrors, containerd's hosts.toml per registry (DIR/docker.io/hosts.toml)")
    .option(
      '--upload-address <host>',
      'kubernetes: serve `run -i` uploads to step pods, which reach this worker at this address (in a pod: its IP)',
    )
    .option('--upload-port <port>', 'kubernetes: port of that upload server', '7789')
    .option('--grace-period <seconds>', 'SIGTERM → SIGKILL grace of an aborted step', '10')
    .option(
      '--creds-file <file>',
      'the cluster-wide credential manager for ((vars)) no -v/-l gives: YAML {type: dummy|kubernetes|vault, config: {...}} (default: CAUSEWAY_CREDS_FILE, CAUSEWAY_CREDS)',
    )
    .option('--team <name>', 'Concourse team: the first segment of credential lookup paths (default: CAUSEWAY_CREDS_TEAM, else main)')
    .option('--no-redact-secrets', 'show credentials in step logs instead of ((redacted)); only to debug a credential manager')
    .addHelpText(
      'after',
      `
Connects to TEMPORAL_ADDRESS / NATS_URL, or to the running dev stack. Stopping a worker
(Ctrl-C, SIGTERM, even SIGKILL) leaves its running steps (processes or pods) alone, and a
worker started again with the same name re-attaches to them. A kubernetes worker needs
the Role in deploy/worker/role.yaml in its namespace; see docs/kubernetes.md.

Examples:
  causeway worker --name builder-1 --tag linux
  causeway worker --runtime containerd --containerd-socket /run/containerd/containerd.sock --default-image busybox
  causeway worker --runtime kubernetes --namespace ci --name k8s-ci`,
    )
    .action(async (opts: Opts) => {
      installSdkLogger();
      const env = readEnv();
      const endpoints = resolveEndpoints();
      if (!endpoints)
        throw new CliError(
          'no Temporal/NATS to connect to',
          'start them with `causeway dev up --no-worker`, or set TEMPORAL_ADDRESS and NATS_URL',
        );
      const grace = Number(opts.gracePeriod);
      if (!Number.isInteger(grace) || grace < 0) throw new CliError(`--grace-period ${opts.gracePeriod}: a whole number of seconds`);
      const common = {
        temporalAddress: endpoints.temporalAddress,
        namespace: env.TEMPORAL_NAMESPACE,
        natsUrl: endpoints.natsUrl,
        home: causewayHome(env),
        tags: opts.tag,
        taskQueue: env.CAUSEWAY_TASK_QUEUE,
        logMaxAgeSeconds: Number(env.CAUSEWAY_LOG_MAX_AGE),
        log: createLogger('worker'),
        credentials: credentialsOf(env, opts),
      };
      let worker: RunningWorker;
      const misplacedContainerd = CONTAINERD_ONLY.find((k) => opts[k] !== undefined);
      if (misplacedContainerd && opts.runtime !== 'containerd')
        throw new CliError(`--${flagName(misplacedContainerd)} is for --runtime containerd`);
      if (opts.runtime === 'kubernetes') {
        if (!opts.namespace) throw new CliError('--runtime kubernetes needs --namespace NS (or POD_NAMESPACE in a pod)');
        const uploadPort = Number(opts.uploadPort);
        if (!Number.isInteger(uploadPort) || uploadPort < 1 || uploadPort > 65535)
          throw new CliError(`--upload-port ${opts.uploadPort}: a port number (1-65535)`);
        const name = checkedName(
          opts.name ?? env.CAUSEWAY_WORKER_NAME ?? `k8s-${opts.namespace}-${os.hostname()}`.replace(/[^A-Za-z0-9_-]/g, '-'),
        );
        worker = await startKubernetesWorker({
          ...common,
          name,
          kubernetes: {
            namespace: opts.namespace,
            kubeconfig: opts.kubeconfig,
            context: opts.context,
            agentImage: opts.agentImage,
            defaultImage: opts.defaultImage,
            graceSeconds: grace,
          },
          uploads: opts.uploadAddress ? { port: uploadPort, advertise: opts.uploadAddress } : undefined,
          reconcile: { intervalMs: parseDuration(env.CAUSEWAY_RECONCILE_INTERVAL) },
        });
      } else {
        const misplaced = KUBERNETES_ONLY.filter(
          (k) => opts[k] !== undefined && !(k === 'namespace' && opts[k] === process.env.POD_NAMESPACE),
        );
        if (misplaced.length > 0) throw new CliError(`--${flagName(misplaced[0])} is for --runtime kubernetes`);
        if (opts.runtime === 'local' && opts.defaultImage !== undefined)
          throw new CliError('--default-image is for --runtime containerd or kubernetes');
        worker = await startLocalWorker({
          ...common,
          name:
            opts.name === undefined && env.CAUSEWAY_WORKER_NAME === undefined
              ? undefined
              : checkedName(opts.name ?? env.CAUSEWAY_WORKER_NAME ?? ''),
          killGraceMs: grace * 1000,
          containerd: opts.runtime === 'containerd' ? containerdOptions(common.home, opts) : undefined,
          reconcile: {
            intervalMs: parseDuration(env.CAUSEWAY_RECONCILE_INTERVAL),
            retentionMs: parseDuration(env.CAUSEWAY_ARTIFACT_RETENTION),
          },
        });
      }
      say(`${opts.runtime} worker ${worker.name} polling ${worker.taskQueue}; Ctrl-C stops it (running steps keep running)`);
      process.once('SIGINT', () => void worker.shutdown());
      process.once('SIGTERM', () => void worker.shutdown());
      await worker.done;
    });
}

function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** The containerd to use: the flags', else the one `causeway dev up --runtime containerd` started in CAUSEWAY_HOME. */
function containerdOptions(home: string, opts: Opts): ContainerdRuntimeOptions {
  const dev = readContainerd(devContainerdDir(home));
  const socket = opts.containerdSocket ?? dev?.socket;
  if (!socket)
    throw new CliError(
      '--runtime containerd needs a containerd',
      'give --containerd-socket PATH, or start one with `causeway dev up --runtime containerd` (docs/containerd.md)',
    );
  return {
    socket,
    hostsDir: opts.registryHosts ?? (opts.containerdSocket ? undefined : dev?.hostsDir),
    defaultImage: opts.defaultImage ?? (opts.containerdSocket ? undefined : DEV_DEFAULT_IMAGE),
  };
}

function credentialsOf(env: Env, opts: Opts) {
  try {
    return workerCredentials(env, { file: opts.credsFile, team: opts.team, noRedact: !opts.redactSecrets });
  } catch (err) {
    throw new CliError((err as Error).message, 'see docs/security.md, "Credential managers"');
  }
}

function checkedName(name: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(name))
    throw new CliError(`--name ${name}: use letters, digits, _ and - only (it becomes part of a task queue name)`);
  return name;
}
