// The payload codec and the codec server, without Temporal: rotation, tampering, tokens, CORS.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Payload } from '@temporalio/common';
import { AesGcmPayloadCodec, ensureCodecKeys, readCodecKeys, rotateCodecKeys } from '../../common/codec';
import { codecServer } from '../../common/codec-server';

const plain: Payload = { metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from('{"password":"hunter2"}') };
let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'codec-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test('round trip; ciphertext holds no plaintext; the keys file is 0600', async () => {
  const file = path.join(dir, 'keys.json');
  const codec = new AesGcmPayloadCodec(ensureCodecKeys(file));
  expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  const [enc] = await codec.encode([plain]);
  expect(Buffer.from(enc!.data!).includes('hunter2')).toBe(false);
  const [dec] = await codec.decode([enc!]);
  expect(Buffer.from(dec!.data!).toString()).toBe('{"password":"hunter2"}');
  expect(Buffer.from(dec!.metadata!.encoding!).toString()).toBe('json/plain');
});

test('after rotation old payloads still decode and new ones use the new key', async () => {
  const file = path.join(dir, 'keys.json');
  const before = new AesGcmPayloadCodec(ensureCodecKeys(file));
  const [old] = await before.encode([plain]);
  const rotated = rotateCodecKeys(file);
  const after = new AesGcmPayloadCodec(rotated);
  const [fresh] = await after.encode([plain]);
  expect(Buffer.from(fresh!.metadata!['encryption-key-id']!).toString()).toBe(rotated.current);
  expect(Buffer.from((await after.decode([old!]))[0]!.data!).toString()).toContain('hunter2');
  await expect(before.decode([fresh!])).rejects.toThrow(/not among the configured keys/);
});

test('a tampered payload is refused', async () => {
  const codec = new AesGcmPayloadCodec(ensureCodecKeys(path.join(dir, 'keys.json')));
  const [enc] = await codec.encode([plain]);
  const flipped = Buffer.from(enc!.data!);
  flipped[20]! ^= 1;
  await expect(codec.decode([{ ...enc!, data: flipped }])).rejects.toThrow();
});

test('a keys file others can read, or with a short key, is refused with how to fix it', () => {
  const file = path.join(dir, 'keys.json');
  fs.writeFileSync(file, JSON.stringify({ current: 'a', keys: { a: Buffer.alloc(16).toString('base64') } }), { mode: 0o600 });
  expect(() => readCodecKeys(file)).toThrow(/keys\.a: a key is 32 random bytes/);
  fs.chmodSync(file, 0o644);
  expect(() => readCodecKeys(file)).toThrow(/chmod 600/);
});

test('codec server: token in header or path, CORS only for the UI origin', async () => {
  const codec = new AesGcmPayloadCodec(ensureCodecKeys(path.join(dir, 'keys.json')));
  const server = codecServer({ codec, token: 'tok', origins: ['http://127.0.0.1:8233'] });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const [enc] = await codec.encode([plain]);
    const body = JSON.stringify({
      payloads: [
        {
          metadata: {
            encoding: Buffer.from(enc!.metadata!.encoding!).toString('base64'),
            'encryption-key-id': Buffer.from(enc!.metadata!['encryption-key-id']!).toString('base64'),
          },
          data: Buffer.from(enc!.data!).toString('base64'),
        },
      ],
    });
    expect((await fetch(`${base}/decode`, { method: 'POST', body })).status).toBe(401);
    expect((await fetch(`${base}/wrong/decode`, { method: 'POST', body })).status).toBe(401);
    const viaHeader = await fetch(`${base}/decode`, { method: 'POST', body, headers: { authorization: 'Bearer tok' } });
    const viaPath = await fetch(`${base}/tok/decode`, { method: 'POST', body, headers: { origin: 'http://127.0.0.1:8233' } });
    for (const res of [viaHeader, viaPath]) {
      expect(res.status).toBe(200);
      const out = (await res.json()) as { payloads: Array<{ data: string }> };
      expect(Buffer.from(out.payloads[0]!.data, 'base64').toString()).toContain('hunter2');
    }
    expect(viaPath.headers.get('access-control-allow-origin')).toBe('http://127.0.0.1:8233');
    const preflight = await fetch(`${base}/tok/decode`, { method: 'OPTIONS', headers: { origin: 'http://evil.example' } });
    expect(preflight.status).toBe(403);
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
  } finally {
    server.close();
  }
});
