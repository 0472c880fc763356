// cli/lazy-protobuf.ts makes protobufjs resolve features per type and build an RPC's message
// constructors on its first call, to cut a CLI command's start: the code protobufjs generates for
// every Temporal message type, and what an RPC sends and returns, must be what they are without it.
import type * as Protobuf from 'protobufjs/light';

interface Loaded {
  protobuf: typeof Protobuf;
  root: Protobuf.Root;
  workflowService: Protobuf.Service;
}

/** A fresh protobufjs and Temporal reflection, as eager as it comes or with cli/lazy-protobuf installed first. */
/* eslint-disable @typescript-eslint/no-require-imports -- jest.isolateModules gives fresh copies of modules only to require */
function load(lazy: boolean): Loaded {
  let loaded: Loaded | undefined;
  jest.isolateModules(() => {
    const protobuf = require('protobufjs/light') as typeof Protobuf;
    if (lazy) (require('../../cli/lazy-protobuf') as typeof import('../../cli/lazy-protobuf')).lazyProtobuf();
    require('@temporalio/proto');
    const root = protobuf.roots.__temporal;
    loaded = { protobuf, root, workflowService: root.lookupService('temporal.api.workflowservice.v1.WorkflowService') };
  });
  return loaded!;
}
/* eslint-enable @typescript-eslint/no-require-imports */

function typesOf(protobuf: typeof Protobuf, root: Protobuf.Root): Protobuf.Type[] {
  const types: Protobuf.Type[] = [];
  const walk = (ns: Protobuf.NamespaceBase) => {
    for (const nested of ns.nestedArray) {
      if (nested instanceof protobuf.Type) types.push(nested);
      if (nested instanceof protobuf.Namespace) walk(nested);
    }
  };
  walk(root);
  return types;
}

const generated = (type: Protobuf.Type) =>
  [type.encode, type.decode, type.verify, type.fromObject, type.toObject].map((fn) => fn.toString()).join('\n');

test('every Temporal message type gets the same encoder, decoder, verifier and converters', () => {
  const eager = load(false);
  const lazy = load(true);
  const lazyTypes = typesOf(lazy.protobuf, lazy.root);
  expect(lazyTypes.length).toBeGreaterThan(500);

  // Laziness itself: setting up one type leaves an unrelated one unresolved.
  lazy.root.lookupType('temporal.api.workflowservice.v1.GetSystemInfoRequest').setup();
  const unrelated = lazy.root.lookupType('temporal.api.schedule.v1.ScheduleSpec') as unknown as { _featuresResolved?: boolean };
  expect(unrelated._featuresResolved).toBeFalsy();

  // Set up in reverse order, so that a type's own setup comes before the types its fields use.
  const lazyCode = new Map([...lazyTypes].reverse().map((type) => [type.fullName, generated(type.setup())]));
  const eagerTypes = typesOf(eager.protobuf, eager.root);
  expect(eagerTypes.map((type) => type.fullName).sort()).toEqual([...lazyCode.keys()].sort());
  for (const type of eagerTypes)
    expect({ type: type.fullName, code: lazyCode.get(type.fullName) }).toEqual({ type: type.fullName, code: generated(type.setup()) });
});

test('an RPC of a lazily created service sends the same bytes and decodes the same response', async () => {
  const call = async ({ workflowService }: Loaded) => {
    const sent: { method: string; data: Buffer }[] = [];
    const responseType = workflowService.lookupType('StartWorkflowExecutionResponse');
    const service = workflowService.create(
      (method, data, callback) => {
        sent.push({ method: method.name, data: Buffer.from(data) });
        callback(null, responseType.encode({ runId: 'run-1', started: true }).finish());
      },
      false,
      false,
    ) as unknown as Record<string, (request: object) => Promise<{ toJSON(): unknown }>>;
    const response = await service.startWorkflowExecution({
      namespace: 'default',
      workflowId: 'build-1',
      workflowType: { name: 'build' },
      input: { payloads: [{ metadata: { encoding: Buffer.from('binary/encrypted') }, data: Buffer.from([1, 2, 3]) }] },
      workflowIdReusePolicy: 2,
    });
    return {
      sent,
      response: response.toJSON(),
      methods: Object.keys(service)
        .filter((k) => typeof service[k] === 'function')
        .sort(),
    };
  };
  const eager = await call(load(false));
  const lazy = await call(load(true));
  expect(lazy).toEqual(eager);
  expect(eager.sent).toHaveLength(1);
  expect(eager.methods).toContain('getSystemInfo');
});

test('a type outside a Root is set up as protobufjs always did', () => {
  const encode = ({ protobuf }: Loaded) => {
    const type = new protobuf.Type('Detached').add(new protobuf.Field('name', 1, 'string')).add(new protobuf.Field('n', 2, 'int32'));
    return { bytes: Buffer.from(type.encode({ name: 'a', n: 0 }).finish()).toString('hex'), code: generated(type) };
  };
  expect(encode(load(true))).toEqual(encode(load(false)));
});
