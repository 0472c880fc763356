import os from 'node:os';
import { causewayHome, readEnv, type Env } from '../../common/config';
import { createLogger } from '../../common/logger';
import { parseResourceImages, type ResourceImages } from '../../schemas/resource-images';
import { parseDuration } from '../../schemas';
import { startKubernetesWorker } from '../../workers/kubernetes';
import { workerCredentials } from '../../workers/credentials';
import { startLocalWorker, type ContainerdRuntimeOptions, type OciRuntimeChoice, type RunningWorker } from '../../workers/local';
import { installSdkLogger } from '../../workers/sdk-logger';
import { DEV_DEFAULT_IMAGE, devContainerdDir, readContainerd } from '../dev/containerd';
import { resolveEndpoints } from '../dev/state';
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
  ociRuntime?: OciRuntimeChoice;
  credsFile?: string;
  team?: string;
  idtokenIssuer?: string;
  idtokenKeys?: string;
  redactSecrets: boolean;
}

const KUBERNETES_ONLY = ['namespace', 'kubeconfig', 'context', 'agentImage', 'uploadAddress'] as const;
const CONTAINERD_ONLY = ['containerdSocket', 'registryHosts', 'ociRuntime'] as const;

export async function worker(opts: Opts): Promise<void> {
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
        resourceImages: resourceImagesOf(env),
        graceSeconds: grace,
      },
      uploads: opts.uploadAddress ? { port: uploadPort, advertise: opts.uploadAddress } : undefined,
      reconcile: { intervalMs: parseDuration(env.CAUSEWAY_RECONCILE_INTERVAL) },
    });
  } else {
    const misplaced = KUBERNETES_ONLY.filter((k) => opts[k] !== undefined && !(k === 'namespace' && opts[k] === process.env.POD_NAMESPACE));
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
    ociRuntime: opts.ociRuntime,
  };
}

function credentialsOf(env: Env, opts: Opts) {
  try {
    return workerCredentials(env, {
      file: opts.credsFile,
      team: opts.team,
      noRedact: !opts.redactSecrets,
      idtokenIssuer: opts.idtokenIssuer,
      idtokenKeys: opts.idtokenKeys,
    });
  } catch (err) {
    throw new CliError((err as Error).message, 'see docs/security.md, "Credential managers"');
  }
}

function resourceImagesOf(env: Env): ResourceImages | undefined {
  try {
    return parseResourceImages(env.CAUSEWAY_RESOURCE_IMAGES);
  } catch (err) {
    throw new CliError((err as Error).message, 'see docs/kubernetes.md, "Resources"');
  }
}

function checkedName(name: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(name))
    throw new CliError(`--name ${name}: use letters, digits, _ and - only (it becomes part of a task queue name)`);
  return name;
}
