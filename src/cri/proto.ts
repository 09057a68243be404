// The project's protos (api/sandlot.proto, which imports api/cri.proto) as grpc-js
// service definitions, built straight from the protobufjs types: one parse per process,
// shared by the daemon, the CLI client and the tests. @grpc/proto-loader would also make,
// for every message type of every method, descriptor objects and file descriptor protos
// (for reflection, which sandlot does not serve): about 2 MiB of RSS for nothing.
//
// Decoding uses PROTO_LOADER_OPTIONS, the options the generated types in src/types/cri/
// are made with (test/unit/cri/generated-types.test.ts): keepCase field names, int64 as
// decimal strings, enums as names, defaults filled, oneofs named. Encoding takes what
// proto-loader's serializer takes (fromObject), and answers built by an AnswerMemo go
// out as the bytes encoded the first time (src/cri/answer-memo.ts).
import { makeClientConstructor, type MethodDefinition, type ServiceDefinition } from '@grpc/grpc-js';
import path from 'node:path';
import protobuf from 'protobufjs';
import { InvalidArgumentError } from '../errors.js';
import { packageRoot } from '../util/package-info.js';
import { messageSerializer } from './message-encoder.js';
import type { CriMethod, RequestInputOf, RequestOf } from './handler-types.js';

export function protoPath(): string {
  return path.join(packageRoot(), 'api/cri.proto');
}

export const PROTO_LOADER_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
} as const;

/** What protobufjs's toObject takes of the options (keepCase is a parse option). */
const CONVERSION: protobuf.IConversionOptions = {
  longs: PROTO_LOADER_OPTIONS.longs,
  enums: PROTO_LOADER_OPTIONS.enums,
  defaults: PROTO_LOADER_OPTIONS.defaults,
  oneofs: PROTO_LOADER_OPTIONS.oneofs,
};

export interface CriServices {
  RuntimeService: ServiceDefinition;
  ImageService: ServiceDefinition;
}

export interface ApiServices extends CriServices {
  /** sandlot.v1.Images (api/sandlot.proto). */
  SandlotImages: ServiceDefinition;
}

let loaded: ApiServices | undefined;

/** api/sandlot.proto and what it imports (cri.proto), parsed with field names as written. */
function loadRoot(): protobuf.Root {
  const api = path.join(packageRoot(), 'api');
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (path.isAbsolute(target) ? target : path.join(api, target));
  root.loadSync(path.join(api, 'sandlot.proto'), { keepCase: PROTO_LOADER_OPTIONS.keepCase });
  root.resolveAll();
  return root;
}

function deserializer(type: protobuf.Type): (buf: Buffer) => object {
  return (buf) => type.toObject(type.decode(buf), CONVERSION);
}

/** One method as grpc-js takes it (what proto-loader makes, without the reflection descriptors). */
function methodDefinition(serviceName: string, m: protobuf.Method): MethodDefinition<object, object> {
  const req = m.resolvedRequestType!;
  const res = m.resolvedResponseType!;
  return {
    path: `/${serviceName}/${m.name}`,
    requestStream: m.requestStream === true,
    responseStream: m.responseStream === true,
    requestSerialize: messageSerializer(req),
    requestDeserialize: deserializer(req),
    responseSerialize: messageSerializer(res),
    responseDeserialize: deserializer(res),
    originalName: m.name.charAt(0).toLowerCase() + m.name.slice(1),
  };
}

function serviceDefinition(root: protobuf.Root, serviceName: string): ServiceDefinition {
  const def: Record<string, MethodDefinition<object, object>> = {};
  for (const m of root.lookupService(serviceName).methodsArray) def[m.name] = methodDefinition(serviceName, m);
  return def;
}

/**
 * Every service the daemon serves, from one parse of api/sandlot.proto (which imports
 * cri.proto), made once per process: the daemon, its clients and the tests share it.
 */
export function loadApiServices(): ApiServices {
  if (!loaded) {
    const root = loadRoot();
    loaded = {
      RuntimeService: serviceDefinition(root, 'runtime.v1.RuntimeService'),
      ImageService: serviceDefinition(root, 'runtime.v1.ImageService'),
      SandlotImages: serviceDefinition(root, 'sandlot.v1.Images'),
    };
  }
  return loaded;
}

export function loadCriServices(): CriServices {
  const { RuntimeService, ImageService } = loadApiServices();
  return { RuntimeService, ImageService };
}

// Untyped on purpose for now: callers index methods by name (tests); the typed stubs are
// RuntimeServiceClient / ImageServiceClient (src/types/cri/runtime/v1/).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function loadCriClientConstructors(): { RuntimeService: any; ImageService: any } {
  const services = loadCriServices();
  return {
    RuntimeService: makeClientConstructor(services.RuntimeService, 'RuntimeService'),
    ImageService: makeClientConstructor(services.ImageService, 'ImageService'),
  };
}

/**
 * A request as the server hands it to the handler of `method`: encoded and decoded by
 * that method's definition, so defaults are filled exactly as on the wire. For calling
 * handlers directly (tests, tools) without building every field by hand.
 */
export function decodedRequest<M extends CriMethod>(method: M, req: RequestInputOf<M>): RequestOf<M> {
  const services = loadCriServices();
  const def = services.RuntimeService[method] ?? services.ImageService[method];
  if (!def) throw new InvalidArgumentError(`decoding a request: ${method} is no method of runtime.v1.RuntimeService or runtime.v1.ImageService`);
  return def.requestDeserialize(def.requestSerialize(req)) as RequestOf<M>;
}
