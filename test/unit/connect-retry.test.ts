// The CLI waits for a busy or starting server instead of failing on the first refused connect.
import { retryConnect } from '../../common/connect-retry';

test('retries with backoff, saying what it waits for, until the connect succeeds', async () => {
  const said: string[] = [];
  let calls = 0;
  const value = await retryConnect(
    'Temporal at 127.0.0.1:7233',
    async () => {
      calls += 1;
      if (calls < 3) throw new Error('14 UNAVAILABLE: connection refused\nmore detail');
      return 'connected';
    },
    (line) => said.push(line),
  );
  expect(value).toBe('connected');
  expect(said).toHaveLength(2);
  expect(said[0]).toMatch(/^waiting for Temporal at 127\.0\.0\.1:7233: 14 UNAVAILABLE: connection refused; retrying in \d\.\d s$/);
});

test('gives up with the last error once its patience is spent', async () => {
  await expect(
    retryConnect(
      'NATS at nats://127.0.0.1:1',
      () => Promise.reject(new Error('ECONNREFUSED')),
      () => undefined,
      300,
    ),
  ).rejects.toThrow('ECONNREFUSED');
});
