// A base resource type (git, time, registry-image, mock: host executables under resources/) on a
// runtime with no host to run it on (kubernetes): its check/in/out run in the type's image
// (scripts/images/build.sh resource-TYPE: /opt/resource/{check,in,out} running the same code),
// through the path an image resource type takes, the same request/response wrapper included.
// Where those images are is a worker option, CAUSEWAY_RESOURCE_IMAGES.
import path from 'node:path';
import type { TaskConfig } from '../../schemas/compiled';
import { RESOURCE_IMAGES_ENV, type ResourceImages } from '../../schemas/resource-images';
import { StepErrored } from '../errors';
import type { ResolvedTask } from '../runtime/types';

/**
 * An `onHost` task (a base type's check/in/out, or a `type: directory` type's) as a task in the
 * base type's image: image_resource set, the script /opt/resource/SCRIPT instead of the host's
 * resources/TYPE/SCRIPT (the wrapper's $0, workflows/resource.ts), run as an image type's.
 * `where` names the runtime in the error when no image can stand in.
 */
export function baseTypeInImage(task: ResolvedTask, images: ResourceImages | undefined, where: string): ResolvedTask {
  const { req } = task;
  const name = req.step.task;
  if (!req.baseType)
    throw new StepErrored(
      `${name}: a resource_types entry of type directory runs on a worker's host, and ${where}: declare the type in resource_types as an image (type: registry-image), or run the build on a local or containerd worker`,
    );
  const image = images?.[req.baseType];
  if (!image)
    throw new StepErrored(
      `${name}: the base resource type ${req.baseType} runs on a worker's host, and ${where}: ` +
        (images
          ? `${RESOURCE_IMAGES_ENV} names no image of ${req.baseType}; add ${req.baseType}=IMAGE to it`
          : `set ${RESOURCE_IMAGES_ENV} on the worker to where its images are (REGISTRY/causeway, images built by scripts/images/build.sh --push REGISTRY resource-${req.baseType}; docs/kubernetes.md)`) +
        `, declare the type in resource_types as an image (e.g. type: registry-image, source: {repository: concourse/git-resource}), or run the build on a local or containerd worker`,
    );
  const inImage = (config: TaskConfig): TaskConfig => {
    const args = [...(config.run.args ?? [])];
    // sh -c WRAPPER SCRIPT [DIR]: SCRIPT is the host's resources/TYPE/{check,in,out}
    if (config.run.path !== 'sh' || args.length < 3)
      throw new StepErrored(`${name}: not a resource script's task (run: ${config.run.path})`);
    args[2] = `/opt/resource/${path.basename(args[2])}`;
    return { ...config, image_resource: image, run: { ...config.run, args } };
  };
  const { onHost: _onHost, ...rest } = req;
  return {
    req: { ...rest, resourceContainer: true, step: { ...req.step, ...(req.step.config ? { config: inImage(req.step.config) } : {}) } },
    resolve: async () => {
      const resolved = await task.resolve();
      return { ...resolved, config: inImage(resolved.config) };
    },
  };
}
