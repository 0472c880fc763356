// CAUSEWAY_RESOURCE_IMAGES, a worker option: where the images of the base resource types are
// (scripts/images/build.sh resource-TYPE), for runtimes that run them in containers
// (activities/step/base-type-image.ts).
import { z } from 'zod';
import type { ImageResource } from './compiled';
import { BASE_RESOURCE_TYPES } from './resources';

export const RESOURCE_IMAGES_ENV = 'CAUSEWAY_RESOURCE_IMAGES';

/** Each base type's image, as a task's image_resource. */
export type ResourceImages = Record<string, ImageResource>;

const REF = /^[a-z0-9][a-z0-9._:/@-]*$/i;

/** `repository[:tag]` or `repository@sha256:...` → image_resource (a registry's port is not a tag). */
function imageOf(ref: string): ImageResource {
  const at = ref.indexOf('@');
  if (at >= 0) return { type: 'registry-image', source: { repository: ref.slice(0, at) }, version: { digest: ref.slice(at + 1) } };
  const colon = ref.lastIndexOf(':');
  if (colon > ref.lastIndexOf('/'))
    return { type: 'registry-image', source: { repository: ref.slice(0, colon), tag: ref.slice(colon + 1) } };
  return { type: 'registry-image', source: { repository: ref } };
}

/**
 * CAUSEWAY_RESOURCE_IMAGES: `PREFIX` (each type's image is PREFIX/resource-TYPE:latest, e.g.
 * `registry.example:5000/causeway`), or `TYPE=REF,...` naming each type's image (a tag or digest
 * each; a type left out keeps erroring).
 */
export const ResourceImagesSchema = z
  .string()
  .trim()
  .min(1, `${RESOURCE_IMAGES_ENV} is empty: unset it, or give PREFIX or TYPE=IMAGE,...`)
  .transform((value, ctx): ResourceImages => {
    const bad = (message: string) => {
      ctx.addIssue({ code: 'custom', message: `${RESOURCE_IMAGES_ENV}=${value}: ${message}` });
      return z.NEVER;
    };
    if (!value.includes('=')) {
      if (!REF.test(value) || value.includes('@')) return bad('PREFIX must be a repository prefix like registry.example:5000/causeway');
      return Object.fromEntries(BASE_RESOURCE_TYPES.map((t) => [t, imageOf(`${value.replace(/\/$/, '')}/resource-${t}`)]));
    }
    const images: ResourceImages = {};
    for (const pair of value.split(',').map((p) => p.trim())) {
      const [type, ref, ...rest] = pair.split('=');
      if (!(BASE_RESOURCE_TYPES as readonly string[]).includes(type))
        return bad(`${JSON.stringify(type)} is not a base type (${BASE_RESOURCE_TYPES.join(', ')})`);
      if (rest.length > 0 || !ref || !REF.test(ref))
        return bad(`${type}= needs one image reference, like ${type}=registry.example/causeway/resource-${type}:TAG`);
      images[type] = imageOf(ref);
    }
    return images;
  });

/** The option's value parsed, or undefined when it is unset; throws naming the option when it is invalid. */
export function parseResourceImages(value: string | undefined): ResourceImages | undefined {
  if (value === undefined) return undefined;
  const r = ResourceImagesSchema.safeParse(value);
  if (!r.success) throw new Error(r.error.issues.map((i) => i.message).join('; '));
  return r.data;
}
