// The SDK's "Failed to start Workflow" hides its cause; startFailure says it.
import { startFailure } from '../../common/build-client';

test('a gRPC message size refusal is named, with what to do', () => {
  const grpc = new Error('8 RESOURCE_EXHAUSTED: grpc: received message larger than max (10485812 vs. 4194304)');
  const err = new Error('Failed to start Workflow', { cause: grpc });
  expect(startFailure(err)).toBe(
    "Failed to start Workflow: 8 RESOURCE_EXHAUSTED: grpc: received message larger than max (10485812 vs. 4194304). The build's input is too large for Temporal: move large data into an input with -i",
  );
});

test('other causes are passed through', () => {
  expect(startFailure(new Error('Failed to start Workflow', { cause: new Error('Namespace nope is not found.') }))).toBe(
    'Failed to start Workflow: Namespace nope is not found.',
  );
});
