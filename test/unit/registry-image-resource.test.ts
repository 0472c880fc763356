// The registry-image base resource type's input checks (its registry work is tested against
// the local registry in test/containerd/registry-image.test.ts).
import os from 'node:os';
import path from 'node:path';
import { get, put, SourceSchema } from '../../resources/src/registry-image';

test('source: repository required, tag latest and insecure false by default, unknown keys refused', () => {
  expect(SourceSchema.parse({ repository: '127.0.0.1:5000/busybox' })).toEqual({
    repository: '127.0.0.1:5000/busybox',
    tag: 'latest',
    insecure: false,
  });
  expect(SourceSchema.safeParse({}).error?.issues[0].message).toContain('registry-image needs source.repository');
  expect(SourceSchema.safeParse({ repository: 'a', tga: 'x' }).success).toBe(false);
});

test('in wants a digest version; out an image inside its directory; both before any registry call', async () => {
  const source = SourceSchema.parse({ repository: 'a/b' });
  const dest = path.join(os.tmpdir(), 'never-written');
  await expect(get(source, { ref: 'x' }, {}, dest)).rejects.toThrow('expected {digest: sha256:<64 hex digits>}');
  await expect(get(source, { digest: `sha256:${'0'.repeat(64)}` }, { format: 'tar' }, dest)).rejects.toThrow('invalid params: format:');
  await expect(put(source, { image: '../../etc/passwd' }, '/tmp/put-dir')).rejects.toThrow("leaves the put's directory");
  await expect(put(source, {}, '/tmp/put-dir')).rejects.toThrow('put needs params.image');
});
