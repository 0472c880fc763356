import {
  ANNOTATIONS,
  CONTAINERS,
  LABELS,
  PodSpecError,
  STREAMER_PORT,
  WORKDIR,
  anchorName,
  buildPod,
  buildStepEnvSecret,
  imageReference,
  labelValue,
  podName,
  resourcesFor,
  tokenSecretName,
  type PodInput,
} from '../../activities/runtime/kubernetes/pod';
import type { TaskConfig, TaskStep } from '../../schemas/compiled';

const config = (over: Partial<TaskConfig> = {}): TaskConfig => ({
  image_resource: { type: 'registry-image', source: { repository: 'docker.io/library/alpine', tag: '3.20' } },
  inputs: [],
  outputs: [],
  caches: [],
  params: {},
  run: { path: 'sh', args: ['-c', 'echo hi'] },
  ...over,
});

const step = (over: Partial<TaskStep> = {}): TaskStep => ({
  kind: 'task',
  id: 'plan.0',
  task: 'unit',
  params: {},
  vars: {},
  inputMapping: {},
  outputMapping: {},
  privileged: false,
  ...over,
});

const input = (over: Partial<PodInput> = {}): PodInput => ({
  namespace: 'ci',
  buildId: 'build-2f0c1c9e-6c1e-4a53-9f4e-0a1b2c3d4e5f',
  runId: '0193b2c4-aaaa-7bbb-8ccc-123456789abc',
  step: step(),
  config: config(),
  runKey: '1',
  attempt: 1,
  worker: 'k8s-ci',
  anchor: { name: 'causeway-build-2f0c1c9e-6c1e-4a53-9f4e-0a1b2c3d4e5f', uid: 'uid-1' },
  tokenSecret: 'causeway-build-2f0c1c9e-6c1e-4a53-9f4e-0a1b2c3d4e5f-token',
  ...over,
});

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$/;

describe('pod names', () => {
  test('are deterministic, DNS labels, and differ by build, run, step and attempt', () => {
    const a = podName('build-1', 'run-1', 'plan.0', '1', 'unit');
    expect(podName('build-1', 'run-1', 'plan.0', '1', 'unit')).toBe(a);
    expect(a).toMatch(DNS_LABEL);
    expect(a.startsWith('cw-unit-')).toBe(true);
    const others = [
      podName('build-2', 'run-1', 'plan.0', '1', 'unit'),
      podName('build-1', 'run-2', 'plan.0', '1', 'unit'),
      podName('build-1', 'run-1', 'plan.1', '1', 'unit'),
      podName('build-1', 'run-1', 'plan.0', '2', 'unit'),
      podName('build-1', 'run-1', 'plan.0', '1.2', 'unit'),
    ];
    expect(new Set([a, ...others]).size).toBe(6);
  });

  test('long or odd task names still give valid names', () => {
    const n = podName('b', 'r', 's', '1', 'Run The_Integration.Tests!!' + 'x'.repeat(100));
    expect(n).toMatch(DNS_LABEL);
    expect(podName('b', 'r', 's', '1', '---')).toMatch(/^cw-step-[0-9a-f]{16}$/);
  });

  test('the token Secret is named after the anchor, so a restarted worker finds it by the build id alone', () => {
    expect(tokenSecretName('build-0b7c4f0e-7d1f-4a39-9a59-2d5cf1a1e1e2')).toBe('causeway-build-0b7c4f0e-7d1f-4a39-9a59-2d5cf1a1e1e2-token');
    expect(tokenSecretName('Odd Build!')).toBe(`${anchorName('Odd Build!')}-token`);
  });

  test('anchor names and label values are valid and unique', () => {
    expect(anchorName('build-2f0c1c9e-6c1e-4a53-9f4e-0a1b2c3d4e5f')).toBe('causeway-build-2f0c1c9e-6c1e-4a53-9f4e-0a1b2c3d4e5f');
    expect(anchorName('Build_With Odd/Chars')).toMatch(DNS_LABEL);
    expect(anchorName('Build_A')).not.toBe(anchorName('build-a'));
    expect(labelValue('plan.2.in_parallel.0')).toBe('plan.2.in_parallel.0');
    const long = 'plan.0.do.1.in_parallel.3.try.do.0.in_parallel.2.do.4.across.do.1.task';
    expect(labelValue(long)).toMatch(LABEL_VALUE);
    expect(labelValue(long)).not.toBe(labelValue(long + 'x'));
    expect(labelValue('a/b')).toMatch(LABEL_VALUE);
  });
});

describe('buildPod', () => {
  test('metadata: name, labels, annotations and the owner reference to the build anchor', () => {
    const pod = buildPod(input());
    expect(pod.metadata?.name).toMatch(DNS_LABEL);
    expect(pod.metadata?.namespace).toBe('ci');
    expect(pod.metadata?.labels).toMatchObject({
      [LABELS.build]: 'build-2f0c1c9e-6c1e-4a53-9f4e-0a1b2c3d4e5f',
      [LABELS.step]: 'plan.0',
      [LABELS.worker]: 'k8s-ci',
      [LABELS.managedBy]: 'causeway',
    });
    for (const v of Object.values(pod.metadata?.labels ?? {})) expect(v).toMatch(LABEL_VALUE);
    expect(pod.metadata?.annotations).toMatchObject({
      [ANNOTATIONS.stepId]: 'plan.0',
      [ANNOTATIONS.attempt]: '1',
      [ANNOTATIONS.runKey]: '1',
    });
    expect(pod.metadata?.ownerReferences).toEqual([
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        name: 'causeway-build-2f0c1c9e-6c1e-4a53-9f4e-0a1b2c3d4e5f',
        uid: 'uid-1',
        blockOwnerDeletion: true,
      },
    ]);
    expect(buildPod(input())).toEqual(pod);
  });

  test('spec: restartPolicy Never, no API token, the command, working dir and the image', () => {
    const pod = buildPod(input({ config: config({ run: { path: '/bin/sh', args: ['-ec', 'make test'], dir: 'repo' } }) }));
    expect(pod.spec?.restartPolicy).toBe('Never');
    expect(pod.spec?.automountServiceAccountToken).toBe(false);
    const task = pod.spec!.containers[0];
    expect(task.name).toBe(CONTAINERS.task);
    expect(task.image).toBe('docker.io/library/alpine:3.20');
    expect(task.command).toEqual(['/bin/sh']);
    expect(task.args).toEqual(['-ec', 'make test']);
    expect(task.workingDir).toBe(`${WORKDIR}/repo`);
    expect(task.securityContext).toBeUndefined();
    expect(task.resources).toBeUndefined();
    expect(pod.spec?.nodeSelector).toBeUndefined();
  });

  test('image: step image wins, then image_resource (tag or digest), then the worker default', () => {
    expect(buildPod(input({ step: step({ image: 'golang:1.26' }) })).spec!.containers[0].image).toBe('golang:1.26');
    expect(imageReference({ type: 'registry-image', source: { repository: 'busybox' } })).toBe('busybox:latest');
    expect(
      imageReference({ type: 'registry-image', source: { repository: 'busybox', tag: '1.37' }, version: { digest: 'sha256:abc' } }),
    ).toBe('busybox@sha256:abc');
    expect(buildPod(input({ config: config({ image_resource: undefined }), defaultImage: 'busybox:1.37' })).spec!.containers[0].image).toBe(
      'busybox:1.37',
    );
    expect(() => buildPod(input({ config: config({ image_resource: undefined }) }))).toThrow(PodSpecError);
    expect(() => buildPod(input({ config: config({ image_resource: { type: 'git', source: { uri: 'x' } } }) }))).toThrow(/registry-image/);
  });

  test("image: naming a get's artifact runs the image it fetched, by repository@digest; bad files are errors", () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    const image = (files: { repository: string; digest: string }) =>
      buildPod(input({ step: step({ image: 'my-image' }), imageArtifact: files })).spec!.containers[0].image;
    expect(image({ repository: '127.0.0.1:5000/library/busybox\n', digest: `${digest}\n` })).toBe(
      `127.0.0.1:5000/library/busybox@${digest}`,
    );
    expect(() => image({ repository: 'busybox', digest: 'latest' })).toThrow(
      /image my-image: its digest file holds "latest", not a sha256 digest/,
    );
    expect(() => image({ repository: 'a b; rm -rf /', digest })).toThrow(/image my-image: its repository file holds/);
    expect(() => image({ repository: '', digest })).toThrow(PodSpecError);
  });

  test('params become env, step params over config params, service env and git trust under both, sorted', () => {
    const pod = buildPod(
      input({
        config: config({ params: { A: '1', B: 'config' } }),
        step: step({ params: { B: 'step', C: '{"x":1}', GIT_CONFIG_VALUE_0: '/tmp/build' } }),
        serviceEnv: { DB_SERVICE_HOST: 'db.ci.svc', A: 'service' },
      }),
    );
    expect(pod.spec!.containers[0].env).toEqual([
      { name: 'A', value: '1' },
      { name: 'B', value: 'step' },
      { name: 'C', value: '{"x":1}' },
      { name: 'DB_SERVICE_HOST', value: 'db.ci.svc' },
      // The fetched files are the fetcher's uid's: the task's git trusts them (its own params win).
      { name: 'GIT_CONFIG_COUNT', value: '1' },
      { name: 'GIT_CONFIG_KEY_0', value: 'safe.directory' },
      { name: 'GIT_CONFIG_VALUE_0', value: '/tmp/build' },
    ]);
  });

  test('a param holding a secret value comes from the step’s Secret, not the pod spec', () => {
    const withSecret = input({
      step: step({ params: { PASSWORD: 's3cret', URL: 'https://u:s3cret@host', 'weird name': 'x-s3cret', PLAIN: 'hello' } }),
      secretValues: ['s3cret'],
    });
    const pod = buildPod(withSecret);
    const name = pod.metadata!.name!;
    expect(JSON.stringify(pod)).not.toContain('s3cret');
    const env = Object.fromEntries(pod.spec!.containers[0].env!.map((e) => [e.name, e.value ?? e.valueFrom]));
    expect(env.PLAIN).toBe('hello');
    expect(env.PASSWORD).toEqual({ secretKeyRef: { name: `${name}-env`, key: 'PASSWORD' } });
    expect(env.URL).toEqual({ secretKeyRef: { name: `${name}-env`, key: 'URL' } });
    const weird = (env['weird name'] as { secretKeyRef: { key: string } }).secretKeyRef.key;
    expect(weird).toMatch(/^env-[0-9a-f]{16}$/);
    const secret = buildStepEnvSecret(withSecret)!;
    expect(secret.metadata).toMatchObject({
      name: `${name}-env`,
      namespace: 'ci',
      ownerReferences: [{ kind: 'ConfigMap', name: input().anchor.name, uid: 'uid-1' }],
      labels: { [LABELS.component]: 'step-env' },
    });
    expect(secret.stringData).toEqual({ PASSWORD: 's3cret', URL: 'https://u:s3cret@host', [weird]: 'x-s3cret' });
    // No secret in the env: no Secret, and the spec is what it was.
    expect(buildStepEnvSecret(input({ secretValues: ['absent'] }))).toBeUndefined();
    expect(buildStepEnvSecret(input())).toBeUndefined();
  });

  test('container_limits become equal requests and limits; the step overrides the config', () => {
    expect(resourcesFor({ cpu: 512, memory: 256 * 1024 * 1024 })).toEqual({
      limits: { cpu: '500m', memory: String(256 * 1024 * 1024) },
      requests: { cpu: '500m', memory: String(256 * 1024 * 1024) },
    });
    expect(resourcesFor({ cpu: 1 })).toEqual({ limits: { cpu: '1m' }, requests: { cpu: '1m' } });
    const pod = buildPod(input({ config: config({ container_limits: { memory: 1000 } }), step: step({ containerLimits: { cpu: 2048 } }) }));
    expect(pod.spec!.containers[0].resources).toEqual({ limits: { cpu: '2000m' }, requests: { cpu: '2000m' } });
  });

  test('privileged and a numeric run.user become the securityContext', () => {
    const pod = buildPod(input({ step: step({ privileged: true }), config: config({ run: { path: 'id', args: [], user: '1000' } }) }));
    expect(pod.spec!.containers[0].securityContext).toEqual({ privileged: true, allowPrivilegeEscalation: true, runAsUser: 1000 });
    expect(
      buildPod(input({ config: config({ run: { path: 'id', args: [], user: 'root' } }) })).spec!.containers[0].securityContext,
    ).toEqual({ runAsUser: 0 });
    expect(() => buildPod(input({ config: config({ run: { path: 'id', args: [], user: 'postgres' } }) }))).toThrow(/numeric/);
  });

  test('a non-root run.user runs the agents as that uid too (they make its directories, read its outputs); root leaves them alone', () => {
    const out = { outputs: [{ name: 'out' }] };
    const asUser = buildPod(input({ config: config({ ...out, run: { path: 'id', args: [], user: '1000' } }) }));
    expect(asUser.spec!.initContainers![0].securityContext).toEqual({ runAsUser: 1000 });
    expect(asUser.spec!.containers[1].securityContext).toEqual({ runAsUser: 1000 });
    const asRoot = buildPod(input({ config: config({ ...out, run: { path: 'id', args: [], user: 'root' } }) }));
    expect(asRoot.spec!.initContainers![0].securityContext).toBeUndefined();
    expect(asRoot.spec!.containers[1].securityContext).toBeUndefined();
  });

  test('tags become a nodeSelector; invalid tags are refused', () => {
    const pod = buildPod(input({ step: step({ tags: ['gpu', 'linux.amd64'] }) }));
    expect(pod.spec?.nodeSelector).toEqual({ 'causeway.dev/tag-gpu': 'true', 'causeway.dev/tag-linux.amd64': 'true' });
    expect(() => buildPod(input({ step: step({ tags: ['has space'] }) }))).toThrow(PodSpecError);
  });

  test('a step without inputs, outputs or caches gets no input-fetcher', () => {
    expect(buildPod(input()).spec!.initContainers).toBeUndefined();
    expect(buildPod(input({ config: config({ caches: [{ path: '.cache' }] }) })).spec!.initContainers).toHaveLength(1);
  });

  test('inputs: the input-fetcher init container pulls them into the work dir with the build token', () => {
    const pod = buildPod(
      input({
        config: config({ inputs: [{ name: 'src', path: 'repo' }], caches: [{ path: '.cache/go' }] }),
        inputs: [{ name: 'src', path: 'repo', url: 'http://198.18.0.7:7788/artifacts/out' }],
      }),
    );
    const [fetcher] = pod.spec!.initContainers!;
    expect(fetcher.name).toBe(CONTAINERS.fetcher);
    expect(fetcher.restartPolicy).toBeUndefined();
    expect(fetcher.command).toEqual(['causeway-agent', 'fetch']);
    const env = Object.fromEntries(fetcher.env!.map((e) => [e.name, e.value ?? e.valueFrom]));
    expect(JSON.parse(env.CAUSEWAY_INPUTS as string)).toEqual([{ name: 'src', path: 'repo', url: 'http://198.18.0.7:7788/artifacts/out' }]);
    expect(JSON.parse(env.CAUSEWAY_MKDIRS as string)).toEqual(['.cache/go']);
    expect(env.CAUSEWAY_ARTIFACT_TOKEN).toEqual({ secretKeyRef: { name: input().tokenSecret, key: 'token' } });
    expect(fetcher.volumeMounts).toEqual([{ name: 'work', mountPath: WORKDIR }]);
    // a failed fetch's reason reaches the step's error through the kubelet
    expect(fetcher.terminationMessagePolicy).toBe('FallbackToLogsOnError');
    expect(pod.spec!.containers.map((c) => c.name)).toEqual([CONTAINERS.task]);
  });

  test('outputs: an output-streamer serves them (names after output_mapping) on the artifacts port', () => {
    const pod = buildPod(
      input({
        config: config({ outputs: [{ name: 'bin' }, { name: 'report', path: 'out/report' }] }),
        step: step({ outputMapping: { bin: 'binaries' } }),
      }),
    );
    const streamer = pod.spec!.containers.find((c) => c.name === CONTAINERS.streamer)!;
    expect(streamer.ports).toEqual([{ name: 'artifacts', containerPort: STREAMER_PORT, protocol: 'TCP' }]);
    const outputs = JSON.parse(streamer.env!.find((e) => e.name === 'CAUSEWAY_OUTPUTS')!.value!);
    expect(outputs).toEqual([
      { name: 'binaries', path: 'bin' },
      { name: 'report', path: 'out/report' },
    ]);
    expect(JSON.parse(pod.metadata!.annotations![ANNOTATIONS.outputs])).toEqual(outputs);
    const fetcherEnv = pod.spec!.initContainers![0].env!;
    expect(JSON.parse(fetcherEnv.find((e) => e.name === 'CAUSEWAY_MKDIRS')!.value!)).toEqual(['bin', 'out/report']);
  });

  test('paths may not leave the work dir', () => {
    expect(() => buildPod(input({ config: config({ run: { path: 'ls', args: [], dir: '../etc' } }) }))).toThrow(/inside/);
    expect(() => buildPod(input({ config: config({ outputs: [{ name: 'o', path: 'a/../../x' }] }) }))).toThrow(/inside/);
  });
});
