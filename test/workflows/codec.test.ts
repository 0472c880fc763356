// The payload codec on a real build: no payload of its history holds a var's value in clear,
// every payload is encrypted, failures' messages are inside the encrypted payload, and the
// codec turns them back (so the test would see the secret if it were there).
import { randomUUID } from 'node:crypto';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { AesGcmPayloadCodec, ENCODING_ENCRYPTED, loadCodecKeys } from '../../common/codec';
import { sh, startHarness, type Harness } from './harness';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.stop());

interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

/**
 * Every payload in the history's proto3 JSON: objects with a base64 `data` and `metadata`.
 * Search attributes are left out: the server indexes them, so no codec may touch them (they
 * hold status and plan names). The whole-history check covers them.
 */
function payloadsOf(node: unknown, out: JsonPayload[] = []): JsonPayload[] {
  if (Array.isArray(node)) node.forEach((n) => payloadsOf(n, out));
  else if (node && typeof node === 'object') {
    const o = node as Record<string, unknown>;
    if (o.metadata && typeof o.metadata === 'object' && 'encoding' in (o.metadata as object)) out.push(o as JsonPayload);
    else Object.entries(o).forEach(([k, v]) => k !== 'searchAttributes' && payloadsOf(v, out));
  }
  return out;
}

test("no payload of a build's history holds a var's value in clear", async () => {
  const secret = `s3cr3t-${randomUUID()}`;
  const yaml = `plan:\n- ${sh('use', 'test -n "$PASSWORD" && echo used', { params: { PASSWORD: '((password))' } })}\n- ${sh('fail', 'echo "$PASSWORD" >&2; exit 3', { params: { PASSWORD: '((password))' } })}`;
  const run = await h.run(yaml, { vars: { password: secret } });
  expect(run.status).toBe('failed');

  const text = historyToJSON(await h.client.workflow.getHandle(run.buildId).fetchHistory());
  expect(text.includes(secret)).toBe(false);
  const json = JSON.parse(text) as {
    events: Array<
      Record<string, { failure?: { message?: string; encodedAttributes?: unknown }; details?: { data?: unknown; 'patch-data'?: unknown } }>
    >;
  };
  // A local activity marker's "data" detail and a patch marker's "patch-data" ({id, deprecated})
  // are written by the SDK's core, past the codec (sequence number, activity type, times, patch
  // id); the local activity's result beside them is encrypted.
  for (const e of json.events) {
    delete e.markerRecordedEventAttributes?.details?.data;
    delete e.markerRecordedEventAttributes?.details?.['patch-data'];
  }
  const payloads = payloadsOf(json);
  expect(payloads.length).toBeGreaterThan(5);
  const b64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64');
  for (const p of payloads) {
    expect(b64(p.metadata?.encoding).toString()).toBe(ENCODING_ENCRYPTED);
    expect(b64(p.data).includes(secret)).toBe(false);
  }

  // Failure messages travel inside the encrypted payload, not in the failure's own fields.
  const failures = json.events
    .flatMap((e) => Object.values(e))
    .flatMap((attrs) => (attrs && typeof attrs === 'object' && attrs.failure ? [attrs.failure] : []));
  expect(failures.length).toBeGreaterThan(0);
  for (const f of failures) {
    expect(f.message).toBe('Encoded failure');
    expect(f.encodedAttributes).toBeDefined();
  }

  // The same payloads decode with the workers' keys, and one of them is the plan holding the value.
  const codec = new AesGcmPayloadCodec(loadCodecKeys({ home: h.home })!);
  const decoded = await codec.decode(
    payloads.map((p) => ({
      metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, b64(v)])),
      data: b64(p.data),
    })),
  );
  expect(decoded.some((p) => Buffer.from(p.data ?? new Uint8Array()).includes(secret))).toBe(true);
});
