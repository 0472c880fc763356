// Step → Pod: a pure function from a task step, its resolved task config and its run
// coordinates to the V1Pod the kubernetes runtime creates. No I/O, no clock, no randomness:
// the same input always gives the same object, so a retried activity computes the very pod
// its previous attempt created (and finds it by name). See docs/kubernetes.md.
import { createHash } from 'node:crypto';
import type { ContainerLimits, ImageResource, TaskConfig, TaskStep } from '../../../schemas/compiled';
import { TRUST_BUILD_FILES } from '../container-env';
import type { V1Container, V1EnvVar, V1OwnerReference, V1Pod, V1ResourceRequirements, V1Secret } from './client';
import { buildEnvSecret, envSecretName, envVars, type EnvSecret } from './env-secret';

export const LABELS = {
  managedBy: 'app.kubernetes.io/managed-by',
  component: 'app.kubernetes.io/component',
  build: 'causeway.dev/build',
  step: 'causeway.dev/step',
  worker: 'causeway.dev/worker',
  run: 'causeway.dev/run',
} as const;

export const ANNOTATIONS = {
  stepId: 'causeway.dev/step-id',
  runId: 'causeway.dev/run-id',
  runKey: 'causeway.dev/run-key',
  attempt: 'causeway.dev/attempt',
  task: 'causeway.dev/task',
  outputs: 'causeway.dev/outputs',
} as const;

export const MANAGED_BY = 'causeway';
/** nodeSelector key a step tag becomes: tag `gpu` → `causeway.dev/tag-gpu: "true"` */
export const TAG_LABEL_PREFIX = 'causeway.dev/tag-';

/** Names of the containers in a step or service pod. */
export const CONTAINERS = {
  task: 'task',
  fetcher: 'input-fetcher',
  streamer: 'output-streamer',
  service: 'service',
  portProbe: 'port-probe',
} as const;
/** Where the step's working directory (inputs, outputs, caches) is mounted in every container. */
export const WORKDIR = '/tmp/build/workdir';
/** Port the output-streamer serves artifacts on (see docs/kubernetes.md, "Agent protocol"). */
export const STREAMER_PORT = 7788;
/** Key of the per-build token in the build's Secret. */
export const TOKEN_KEY = 'token';
export const DEFAULT_AGENT_IMAGE = 'ghcr.io/causeway-ci/causeway-agent:0.1.0';

/** The per-build object every object of the build is owned by; deleting it cascades. */
export interface Anchor {
  name: string;
  uid: string;
}

/** An input the input-fetcher pulls from a producer pod's output-streamer. */
export interface InputSource {
  /** the input's name in the task config */
  name: string;
  /** where it lands, relative to WORKDIR */
  path: string;
  /** http://<producer pod IP>:7788/artifacts/<output path>, resolved by the activity */
  url: string;
}

export interface PodInput {
  namespace: string;
  buildId: string;
  runId: string;
  step: TaskStep;
  /** the resolved task config (inline, or loaded from the task file) */
  config: TaskConfig;
  /** the attempt key: attempt numbers of the step and its enclosing `attempts` */
  runKey: string;
  attempt: number;
  worker: string;
  anchor: Anchor;
  /** the build's Secret holding the artifact token */
  tokenSecret: string;
  /** image for tasks without image_resource/image, if the worker has one */
  defaultImage?: string;
  /**
   * The step's `image:` names an artifact in scope: its `repository` and `digest` files (a get
   * of a registry-image resource writes them), read by the caller; the pod runs that image.
   */
  imageArtifact?: { repository: string; digest: string };
  agentImage?: string;
  /** resolved inputs; absent optional inputs are simply not listed */
  inputs?: InputSource[];
  /** env vars from the step's services (NAME_SERVICE_HOST, ...) */
  serviceEnv?: Record<string, string>;
  /** seconds between SIGTERM and SIGKILL when the pod is deleted */
  terminationGracePeriodSeconds?: number;
  serviceAccountName?: string;
  /** values the pod spec must not show: env vars holding them come from the step's Secret (env-secret.ts) */
  secretValues?: readonly string[];
}

/** A bad task option for this runtime: the step ends errored with this message. */
export class PodSpecError extends Error {}

const DNS_LABEL_MAX = 63;

function hash(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex');
}

/** Lowercase alphanumerics and '-', no leading/trailing '-', at most max chars. */
export function dnsSlug(text: string, max: number): string {
  const slug = text
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .slice(0, max)
    .replace(/^-+|-+$/g, '');
  return slug;
}

/**
 * A valid label value (≤63 chars of [A-Za-z0-9._-], alphanumeric at both ends). Values that
 * do not fit keep a readable prefix and end in a hash of the whole, so they stay unique.
 */
export function labelValue(text: string): string {
  const clean = text.replace(/[^A-Za-z0-9._-]+/g, '-');
  const trim = (s: string) => s.replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  if (clean === text && text.length <= DNS_LABEL_MAX && trim(text) === text) return text;
  const h = hash(text).slice(0, 10);
  return `${trim(clean.slice(0, DNS_LABEL_MAX - h.length - 1))}-${h}`.replace(/^-/, '');
}

/** The build's Secret holding the artifact token. */
export function tokenSecretName(buildId: string): string {
  return `${anchorName(buildId)}-token`;
}

/** The anchor's name: `causeway-<build id>` (build ids are `build-<uuid>`). */
export function anchorName(buildId: string): string {
  const slug = dnsSlug(buildId, 200);
  const name = `causeway-${slug}`;
  if (name.length <= DNS_LABEL_MAX && slug === buildId) return name;
  return `causeway-${slug.slice(0, 32).replace(/-+$/, '')}-${hash(buildId).slice(0, 10)}`;
}

/**
 * The pod's name: readable prefix (task name) + a hash of build, run, step and attempt key,
 * so two runs of a step never share a name and a retried activity computes the same one.
 */
export function podName(buildId: string, runId: string, stepId: string, runKey: string, task: string): string {
  const h = hash(buildId, runId, stepId, runKey).slice(0, 16);
  const prefix = dnsSlug(task, DNS_LABEL_MAX - 3 - 1 - h.length) || 'step';
  return `cw-${prefix}-${h}`;
}

/** registry-image / docker-image source → `repository:tag` or `repository@digest`. */
export function imageReference(resource: ImageResource): string {
  if (resource.type !== 'registry-image' && resource.type !== 'docker-image') {
    throw new PodSpecError(`image_resource type ${resource.type}: the kubernetes runtime supports registry-image and docker-image`);
  }
  const repository = resource.source.repository;
  if (typeof repository !== 'string' || repository === '') throw new PodSpecError('image_resource.source.repository is required');
  const digest = resource.version?.digest;
  if (digest) return `${repository}@${digest}`;
  const tag = resource.source.tag ?? 'latest';
  if (typeof tag !== 'string' && typeof tag !== 'number') throw new PodSpecError('image_resource.source.tag must be a string');
  return `${repository}:${tag}`;
}

/**
 * A get's image as the kubelet pulls it: `repository@digest`, the very image the get fetched,
 * whatever its tag points at now. The files come from a step's output: checked, not trusted.
 */
export function artifactImageReference(name: string, files: { repository: string; digest: string }): string {
  const repository = files.repository.trim();
  const digest = files.digest.trim();
  if (!/^[a-z0-9][a-z0-9._:/-]*$/i.test(repository) || repository.length > 512)
    throw new PodSpecError(`image ${name}: its repository file holds ${JSON.stringify(repository.slice(0, 80))}, not an image repository`);
  if (!/^sha256:[0-9a-f]{64}$/.test(digest))
    throw new PodSpecError(`image ${name}: its digest file holds ${JSON.stringify(digest.slice(0, 80))}, not a sha256 digest`);
  return `${repository}@${digest}`;
}

/**
 * The task's image: the step's `image:` (the image a get fetched when it names an artifact, else
 * an image reference), then image_resource, then the worker's default.
 */
export function taskImage(
  step: TaskStep,
  config: TaskConfig,
  defaultImage?: string,
  imageArtifact?: { repository: string; digest: string },
): string {
  if (step.image && imageArtifact) return artifactImageReference(step.image, imageArtifact);
  if (step.image) return step.image;
  if (config.image_resource) return imageReference(config.image_resource);
  if (config.rootfs_uri) throw new PodSpecError('rootfs_uri is not supported by the kubernetes runtime: use image_resource');
  if (defaultImage) return defaultImage;
  throw new PodSpecError(`task ${step.task}: no image: set image_resource (type registry-image) or the step's image`);
}

/**
 * container_limits → resources. Concourse's cpu is a CPU-shares weight (1024 = one CPU), so
 * it becomes cpu = shares/1024 cores in millicores; memory is bytes. Requests equal limits
 * (Guaranteed QoS), so a step gets what it asked for or is not scheduled.
 */
export function resourcesFor(limits?: ContainerLimits): V1ResourceRequirements | undefined {
  if (!limits || (limits.cpu === undefined && limits.memory === undefined)) return undefined;
  const values: Record<string, string> = {};
  if (limits.cpu !== undefined) values.cpu = `${Math.max(1, Math.round((limits.cpu * 1000) / 1024))}m`;
  if (limits.memory !== undefined) values.memory = String(limits.memory);
  return { limits: { ...values }, requests: { ...values } };
}

/** A step tag as a nodeSelector entry; tags must be valid label name parts. */
export function tagSelector(tags: string[] = []): Record<string, string> | undefined {
  if (tags.length === 0) return undefined;
  const selector: Record<string, string> = {};
  for (const tag of tags) {
    if (!/^[A-Za-z0-9]([A-Za-z0-9._-]{0,44}[A-Za-z0-9])?$/.test(tag)) {
      throw new PodSpecError(`tag ${JSON.stringify(tag)}: a tag must be letters, digits, '.', '_' or '-' (at most 46) to select nodes`);
    }
    selector[`${TAG_LABEL_PREFIX}${tag}`] = 'true';
  }
  return selector;
}

function runAsUser(user: string | undefined): number | undefined {
  if (user === undefined) return undefined;
  if (user === 'root') return 0;
  if (/^\d+$/.test(user)) return Number(user);
  throw new PodSpecError(`run.user ${user}: the kubernetes runtime needs a numeric user id (or root)`);
}

export function within(workdir: string, rel: string): string {
  const parts = rel.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new PodSpecError(`path ${rel}: must stay inside the working directory`);
  return parts.length ? `${workdir}/${parts.join('/')}` : workdir;
}

/** The output names (after output_mapping) and their paths in the work dir, in config order. */
export function outputPaths(step: TaskStep, config: TaskConfig): { name: string; path: string }[] {
  return config.outputs.map((o) => ({ name: step.outputMapping[o.name] ?? o.name, path: within('', o.path ?? o.name).replace(/^\//, '') }));
}

/** The agents' artifact token, from the build's Secret (never in the pod spec itself). */
function tokenEnv(tokenSecret: string): V1EnvVar {
  return { name: 'CAUSEWAY_ARTIFACT_TOKEN', valueFrom: { secretKeyRef: { name: tokenSecret, key: TOKEN_KEY } } };
}

/**
 * The input-fetcher init container of a step or service pod: pulls `inputs` into WORKDIR (the
 * pod's `work` volume) and creates `mkdirs` there (docs/kubernetes.md, "Agent protocol").
 */
export function inputFetcher(o: {
  agentImage: string;
  inputs: InputSource[];
  mkdirs: string[];
  tokenSecret: string;
  securityContext?: V1Container['securityContext'];
}): V1Container {
  return {
    name: CONTAINERS.fetcher,
    image: o.agentImage,
    command: ['causeway-agent', 'fetch'],
    env: [
      { name: 'CAUSEWAY_WORKDIR', value: WORKDIR },
      {
        name: 'CAUSEWAY_INPUTS',
        value: JSON.stringify(o.inputs.map((i) => ({ name: i.name, path: within('', i.path).replace(/^\//, ''), url: i.url }))),
      },
      { name: 'CAUSEWAY_MKDIRS', value: JSON.stringify(o.mkdirs) },
      tokenEnv(o.tokenSecret),
    ],
    volumeMounts: [{ name: 'work', mountPath: WORKDIR }],
    ...(o.securityContext ? { securityContext: o.securityContext } : {}),
    // Its reason (the agent's last stderr line) becomes the container's terminated message, which
    // the step's error quotes; without this a real kubelet reports an empty one.
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };
}

export function buildPod(input: PodInput): V1Pod {
  const { step, config } = input;
  const name = podName(input.buildId, input.runId, step.id, input.runKey, step.task);
  const agentImage = input.agentImage ?? DEFAULT_AGENT_IMAGE;
  const limits = step.containerLimits ?? config.container_limits;
  const outputs = outputPaths(step, config);
  const inputs = input.inputs ?? [];
  const work = { name: 'work', mountPath: WORKDIR };
  const token = tokenEnv(input.tokenSecret);

  const user = runAsUser(config.run.user);
  const task: V1Container = {
    name: CONTAINERS.task,
    image: taskImage(step, config, input.defaultImage, input.imageArtifact),
    command: [config.run.path],
    args: config.run.args,
    workingDir: within(WORKDIR, config.run.dir ?? '.'),
    env: envVars(taskEnv(input), envSecretOf(input, name)),
    volumeMounts: [work],
    resources: resourcesFor(limits),
    securityContext:
      step.privileged || user !== undefined
        ? {
            ...(step.privileged ? { privileged: true, allowPrivilegeEscalation: true } : {}),
            ...(user !== undefined ? { runAsUser: user } : {}),
          }
        : undefined,
    terminationMessagePolicy: 'FallbackToLogsOnError',
  };

  // Every directory the task expects (inputs, outputs, caches) exists before it starts: the
  // fetcher pulls inputs and creates the rest (in an image-independent way). A step with none of
  // them gets no fetcher: an init container costs a container start and the kubelet's notice of
  // its exit (up to its 1 s relist), about 0.9 s of every step's gap on the real node.
  const mkdirs = [...outputs.map((o) => o.path), ...config.caches.map((c) => within('', c.path).replace(/^\//, ''))];
  // A task with a non-root run.user owns what the fetcher makes (its inputs, output and cache
  // directories) and the streamer reads what it wrote: both agents run as its uid. Otherwise
  // they keep the agent image's own non-root user.
  const agentSecurity = agentsRunAsTask(user) ? { securityContext: { runAsUser: user } } : {};
  const fetcher = inputFetcher({ agentImage, inputs, mkdirs, tokenSecret: input.tokenSecret, ...agentSecurity });

  const containers: V1Container[] = [task];
  if (outputs.length > 0) {
    // A regular container, not a native sidecar: kubelet stops native sidecars as soon as the
    // task container ends, but outputs must stay served until every consumer has fetched them
    // (the workflow then deletes the pod). The step ends when the task container terminates.
    containers.push({
      name: CONTAINERS.streamer,
      image: agentImage,
      command: ['causeway-agent', 'serve'],
      env: [
        { name: 'CAUSEWAY_WORKDIR', value: WORKDIR },
        { name: 'CAUSEWAY_OUTPUTS', value: JSON.stringify(outputs) },
        { name: 'CAUSEWAY_PORT', value: String(STREAMER_PORT) },
        token,
      ],
      ports: [{ name: 'artifacts', containerPort: STREAMER_PORT, protocol: 'TCP' }],
      readinessProbe: { httpGet: { path: '/healthz', port: STREAMER_PORT }, periodSeconds: 2 },
      volumeMounts: [work],
      resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '128Mi' } },
      ...agentSecurity,
    });
  }

  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: input.namespace,
      labels: stepLabels(input, 'step'),
      annotations: {
        [ANNOTATIONS.stepId]: step.id,
        [ANNOTATIONS.runId]: input.runId,
        [ANNOTATIONS.runKey]: input.runKey,
        [ANNOTATIONS.attempt]: String(input.attempt),
        [ANNOTATIONS.task]: step.task,
        [ANNOTATIONS.outputs]: JSON.stringify(outputs),
      },
      ownerReferences: [anchorOwner(input.anchor)],
    },
    spec: {
      restartPolicy: 'Never',
      // Steps get no API credentials: they are user code.
      automountServiceAccountToken: false,
      serviceAccountName: input.serviceAccountName,
      enableServiceLinks: false,
      terminationGracePeriodSeconds: input.terminationGracePeriodSeconds ?? 10,
      nodeSelector: tagSelector(step.tags),
      initContainers: inputs.length > 0 || mkdirs.length > 0 ? [fetcher] : undefined,
      containers,
      volumes: [{ name: 'work', emptyDir: {} }],
    },
  };
}

/**
 * The task container's env: git's trust of the fetched files (unless the agents run as the
 * task's own uid: a non-root run.user), service addresses, then the config's params, then the step's.
 */
function taskEnv(input: PodInput): Record<string, string> {
  const own = agentsRunAsTask(runAsUser(input.config.run.user));
  return { ...(own ? {} : TRUST_BUILD_FILES), ...(input.serviceEnv ?? {}), ...input.config.params, ...input.step.params };
}

/** A task with a non-root run.user owns what its agents make: they run as its uid (buildPod). */
function agentsRunAsTask(user: number | undefined): boolean {
  return user !== undefined && user !== 0;
}

function envSecretOf(input: PodInput, pod: string): EnvSecret | undefined {
  return input.secretValues?.length ? { name: envSecretName(pod), values: input.secretValues } : undefined;
}

function anchorOwner(anchor: Anchor): V1OwnerReference {
  return { apiVersion: 'v1', kind: 'ConfigMap', name: anchor.name, uid: anchor.uid, blockOwnerDeletion: true };
}

function stepLabels(input: PodInput, component: string): Record<string, string> {
  return {
    [LABELS.managedBy]: MANAGED_BY,
    [LABELS.component]: component,
    [LABELS.build]: labelValue(input.buildId),
    [LABELS.step]: labelValue(input.step.id),
    [LABELS.worker]: labelValue(input.worker),
    [LABELS.run]: labelValue(input.runId),
  };
}

/**
 * The Secret the step's pod reads its secret env vars from, created before the pod and owned
 * by the build's anchor as the pod is; undefined when no var holds a secret.
 */
export function buildStepEnvSecret(input: PodInput): V1Secret | undefined {
  const pod = podName(input.buildId, input.runId, input.step.id, input.runKey, input.step.task);
  const secret = envSecretOf(input, pod);
  if (!secret) return undefined;
  return buildEnvSecret({
    namespace: input.namespace,
    vars: taskEnv(input),
    secret,
    owner: anchorOwner(input.anchor),
    labels: stepLabels(input, 'step-env'),
  });
}
