// Temporal's client holds a protobufjs reflection of the whole Temporal API (~1,000 message
// types). Out of the box protobufjs 8, at the first message a process encodes, resolves the
// edition features of every type and field, and the client's Connection builds the constructor
// of every RPC's request and response (~290 types) for the ~140 RPCs it exposes: together ~60
// CPU-ms of a one-step `causeway run` that makes five RPCs (BENCHMARKS.md, "One-step build
// latency"). This does both for one type and one RPC at a time, when first used. The
// encoders and decoders protobufjs generates are the same either way:
// test/unit/lazy-protobuf.test.ts compares them for every type.
import * as protobuf from 'protobufjs/light';

/** The members of protobufjs's reflection objects that feature resolution uses (not in its typings). */
interface Resolvable {
  parent: Resolvable | null;
  _edition: string | null;
  _resolveFeatures(edition: string | undefined): void;
}
interface ResolvableRoot {
  _needsRecursiveFeatureResolution: boolean;
}

/** Resolves the features of `object` and of its ancestors, outermost first as protobufjs does; returns its edition. */
function resolveLineage(object: Resolvable): string | undefined {
  const chain: Resolvable[] = [];
  for (let at: Resolvable | null = object; at; at = at.parent) chain.unshift(at);
  let edition: string | undefined;
  for (const at of chain) {
    edition = at._edition ?? edition;
    at._resolveFeatures(edition);
  }
  return edition;
}

const asResolvable = (object: unknown) => object as Resolvable;

let installed = false;

/**
 * Makes protobufjs resolve features per type and build an RPC's message constructors on its
 * first call, for this process. A protobufjs without the members this relies on is left as it is.
 */
export function lazyProtobuf(): void {
  if (installed) return;
  installed = true;
  const typeProto = protobuf.Type.prototype as protobuf.Type & Partial<Resolvable>;
  if (typeof typeProto._resolveFeatures !== 'function' || typeof typeProto.setup !== 'function') return;
  const eagerSetup = typeProto.setup;
  // What Type#setup reads of the features: the type's, its oneofs' and fields', and those of the enums its fields use.
  typeProto.setup = function setup(this: protobuf.Type): protobuf.Type {
    // Outside a Root (no edition to start from) the eager setup decides as it always has.
    if (!(this.root instanceof protobuf.Root)) return eagerSetup.call(this);
    const edition = resolveLineage(asResolvable(this));
    for (const oneof of this.oneofsArray) asResolvable(oneof)._resolveFeatures(edition);
    for (const field of this.fieldsArray) {
      asResolvable(field)._resolveFeatures(edition);
      const type = field.resolve().resolvedType;
      if (type instanceof protobuf.Enum) resolveLineage(asResolvable(type));
    }
    // The eager setup resolves the whole root when this flag says it is not yet; leave it set for later additions.
    const root = this.root as unknown as ResolvableRoot;
    const pending = root._needsRecursiveFeatureResolution;
    root._needsRecursiveFeatureResolution = false;
    try {
      return eagerSetup.call(this);
    } finally {
      root._needsRecursiveFeatureResolution = pending;
    }
  };

  protobuf.Service.prototype.create = function create(
    this: protobuf.Service,
    rpcImpl: protobuf.RPCImpl,
    requestDelimited?: boolean,
    responseDelimited?: boolean,
  ): protobuf.rpc.Service {
    const service = new protobuf.rpc.Service(rpcImpl, requestDelimited, responseDelimited);
    const methods = service as unknown as Record<string, unknown>;
    for (const method of this.methodsArray) {
      type Ctor = protobuf.Constructor<protobuf.Message>;
      let types: { request: Ctor; response: Ctor } | undefined;
      methods[protobuf.util.lcFirst(method.name).replace(/[^$\w_]/g, '')] = function rpcMethod(
        this: protobuf.rpc.Service,
        request: protobuf.Message,
        callback: protobuf.rpc.ServiceMethodCallback<protobuf.Message>,
      ): unknown {
        if (!types) {
          method.resolve();
          types = { request: method.resolvedRequestType!.ctor as Ctor, response: method.resolvedResponseType!.ctor as Ctor };
        }
        return protobuf.rpc.Service.prototype.rpcCall.call(this, method, types.request, types.response, request, callback);
      };
    }
    return service;
  };
}
