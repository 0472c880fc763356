// What jest's globalSetup started, as the tests see it (env vars are the only channel
// from globalSetup into test files, which run in their own module registry).
import { z } from 'zod';

const TestStackEnv = z.object({
  TEMPORAL_ADDRESS: z.string().min(1),
  NATS_URL: z.string().min(1),
  CAUSEWAY_HOME: z.string().min(1),
});

export interface TestStack {
  temporalAddress: string;
  natsUrl: string;
  home: string;
}

export function testStack(env: NodeJS.ProcessEnv = process.env): TestStack {
  const parsed = TestStackEnv.safeParse(env);
  if (!parsed.success) {
    throw new Error(
      'TEMPORAL_ADDRESS, NATS_URL and CAUSEWAY_HOME are not set: run this test through the jest ' +
        '"integration" project (test/workflows or test/e2e), whose globalSetup starts Temporal and NATS',
    );
  }
  return { temporalAddress: parsed.data.TEMPORAL_ADDRESS, natsUrl: parsed.data.NATS_URL, home: parsed.data.CAUSEWAY_HOME };
}
