// Loads the project's CRI proto (api/cri.proto) into grpc-js service definitions, with
// the loader options every decoder here uses (PROTO_LOADER_OPTIONS; the generated types
// in src/types/cri/ are made with the same, see test/unit/cri/generated-types.test.ts).
import { loadPackageDefinition, type ServiceDefinition } from '@grpc/grpc-js';
import { InvalidArgumentError } from '../errors.js';
import type { ProtoGrpcType } from '../types/cri/cri.js';
import type { ProtoGrpcType as SandlotProtoGrpcType } from '../types/cri/sandlot.js';
import type { CriMethod, RequestInputOf, RequestOf } from './handler-types.js';
import { loadSync } from '@grpc/proto-loader';
import path from 'node:path';
import { packageRoot } from '../util/package-info.js';

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

export interface CriServices {
  RuntimeService: ServiceDefinition;
  ImageService: ServiceDefinition;
}

export function loadCriServices(): CriServices {
  const pkg = loadCriPackage();
  return {
    RuntimeService: pkg.RuntimeService.service,
    ImageService: pkg.ImageService.service,
  };
}

export interface ApiServices extends CriServices {
  /** sandlot.v1.Images (api/sandlot.proto). */
  SandlotImages: ServiceDefinition;
}

/**
 * Every service the daemon serves, from one load of api/sandlot.proto (which imports
 * cri.proto): loading cri.proto on its own as well would keep a second copy of all CRI
 * descriptors in the daemon (about 2 MiB of heap).
 */
export function loadApiServices(): ApiServices {
  const api = path.join(packageRoot(), 'api');
  const def = loadSync(path.join(api, 'sandlot.proto'), { ...PROTO_LOADER_OPTIONS, includeDirs: [api] });
  const pkg = loadPackageDefinition(def) as unknown as SandlotProtoGrpcType;
  return {
    RuntimeService: pkg.runtime.v1.RuntimeService.service,
    ImageService: pkg.runtime.v1.ImageService.service,
    SandlotImages: pkg.sandlot.v1.Images.service,
  };
}

/** runtime.v1 as grpc-js loads it, typed by the generated src/types/cri/cri.ts. */
function loadCriPackage(): ProtoGrpcType['runtime']['v1'] {
  const def = loadSync(protoPath(), PROTO_LOADER_OPTIONS);
  return (loadPackageDefinition(def) as unknown as ProtoGrpcType).runtime.v1;
}

// Untyped on purpose for now: callers index methods by name (src/cli/client.ts, tests);
// the typed constructors are ProtoGrpcType['runtime']['v1'] (src/types/cri/cri.ts).
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function loadCriClientConstructors(): { RuntimeService: any; ImageService: any } {
  const pkg = loadCriPackage();
  return { RuntimeService: pkg.RuntimeService, ImageService: pkg.ImageService };
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
