// A base resource type's get on the kubernetes runtime: with CAUSEWAY_RESOURCE_IMAGES set its
// script runs in a pod of the type's image, through the image type's path; without it the step
// errors naming the option.
import { baseTypeInImage } from '../../activities/step/base-type-image';
import { RESOURCE_WRAPPERS } from '../../common/resource-scripts';
import { buildPod } from '../../activities/runtime/kubernetes/pod';
import type { ResolvedTask } from '../../activities/runtime/types';
import type { RunTaskRequest } from '../../activities/types';
import { parseResourceImages } from '../../schemas/resource-images';
import type { TaskConfig, TaskStep } from '../../schemas/compiled';

const WRAPPER = RESOURCE_WRAPPERS.in;

const config: TaskConfig = {
  inputs: [],
  outputs: [{ name: 'repo' }, { name: 'causeway-resource-response' }],
  caches: [],
  params: { BUILD_ID: 'b' },
  run: { path: 'sh', args: ['-c', WRAPPER, '/opt/causeway/resources/git/in', 'repo'] },
};

const step: TaskStep = {
  kind: 'task',
  id: 'plan.0',
  task: 'get repo',
  config,
  params: {},
  vars: {},
  inputMapping: {},
  outputMapping: {},
  privileged: false,
};

const task = (over: Partial<RunTaskRequest> = {}): ResolvedTask => ({
  req: { buildId: 'b', runId: 'r', plan: 'p', step, runKey: '1.in', attempt: 1, artifacts: {}, onHost: true, baseType: 'git', ...over },
  resolve: () => Promise.resolve({ config, inputs: [] }),
});

const K8S = "a kubernetes worker's steps run only in pods";

describe('CAUSEWAY_RESOURCE_IMAGES', () => {
  test('a prefix names each base type image under it', () => {
    expect(parseResourceImages('127.0.0.1:5000/causeway/')).toEqual({
      git: { type: 'registry-image', source: { repository: '127.0.0.1:5000/causeway/resource-git' } },
      time: { type: 'registry-image', source: { repository: '127.0.0.1:5000/causeway/resource-time' } },
      'registry-image': { type: 'registry-image', source: { repository: '127.0.0.1:5000/causeway/resource-registry-image' } },
      mock: { type: 'registry-image', source: { repository: '127.0.0.1:5000/causeway/resource-mock' } },
    });
  });

  test('TYPE=REF pairs name one image each, with a tag or a digest', () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    expect(parseResourceImages(`git=reg:5000/cw/git:v1, time=reg/cw/time@${digest}`)).toEqual({
      git: { type: 'registry-image', source: { repository: 'reg:5000/cw/git', tag: 'v1' } },
      time: { type: 'registry-image', source: { repository: 'reg/cw/time' }, version: { digest } },
    });
    expect(parseResourceImages(undefined)).toBeUndefined();
  });

  test('a type that is not a base type, or a ref that is not one, is an error naming the option', () => {
    expect(() => parseResourceImages('svn=reg/svn')).toThrow(
      'CAUSEWAY_RESOURCE_IMAGES=svn=reg/svn: "svn" is not a base type (git, time, registry-image, mock)',
    );
    expect(() => parseResourceImages('git=')).toThrow('git= needs one image reference');
    expect(() => parseResourceImages(' ')).toThrow('CAUSEWAY_RESOURCE_IMAGES is empty');
  });
});

describe('a base type get on a runtime with no host', () => {
  test("runs /opt/resource/in in a pod of the type's image, with the same wrapper and directory", async () => {
    const mapped = baseTypeInImage(task(), parseResourceImages('127.0.0.1:5000/causeway'), K8S);
    expect(mapped.req.onHost).toBeUndefined();
    expect(mapped.req.resourceContainer).toBe(true);
    const { config: resolved } = await mapped.resolve();
    expect(mapped.req.step.config).toEqual(resolved);
    const pod = buildPod({
      namespace: 'ci',
      buildId: 'b',
      runId: 'r',
      step: mapped.req.step,
      config: resolved,
      runKey: '1.in',
      attempt: 1,
      worker: 'k8s-ci',
      anchor: { name: 'causeway-b', uid: 'uid-1' },
      tokenSecret: 'causeway-b-token',
    });
    const container = pod.spec!.containers[0];
    expect(container.image).toBe('127.0.0.1:5000/causeway/resource-git:latest');
    expect(container.command).toEqual(['sh']);
    expect(container.args).toEqual(['-c', WRAPPER, '/opt/resource/in', 'repo']);
    expect(container.env).toEqual(expect.arrayContaining([{ name: 'BUILD_ID', value: 'b' }]));
  });

  test('without the option the step errors naming it; a directory type errors as before', () => {
    expect(() => baseTypeInImage(task(), undefined, K8S)).toThrow(
      /get repo: the base resource type git runs on a worker's host, and a kubernetes worker's steps run only in pods: set CAUSEWAY_RESOURCE_IMAGES on the worker/,
    );
    expect(() => baseTypeInImage(task({ baseType: 'time' }), parseResourceImages('git=reg/git'), K8S)).toThrow(
      'CAUSEWAY_RESOURCE_IMAGES names no image of time; add time=IMAGE to it',
    );
    expect(() => baseTypeInImage(task({ baseType: undefined }), parseResourceImages('reg/cw'), K8S)).toThrow(
      'get repo: a resource_types entry of type directory runs on a worker',
    );
  });
});
