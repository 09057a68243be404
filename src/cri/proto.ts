// Loads the project's CRI proto (api/cri.proto) into grpc-js service definitions.
import { loadPackageDefinition, type ServiceDefinition } from '@grpc/grpc-js';
import { InvalidArgumentError } from '../errors.js';
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
  const def = loadSync(protoPath(), PROTO_LOADER_OPTIONS);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const pkg = loadPackageDefinition(def) as any;
  return {
    RuntimeService: pkg.runtime.v1.RuntimeService.service as ServiceDefinition,
    ImageService: pkg.runtime.v1.ImageService.service as ServiceDefinition,
  };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function loadCriClientConstructors(): { RuntimeService: any; ImageService: any } {
  const def = loadSync(protoPath(), PROTO_LOADER_OPTIONS);
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const pkg = loadPackageDefinition(def) as any;
  return { RuntimeService: pkg.runtime.v1.RuntimeService, ImageService: pkg.runtime.v1.ImageService };
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
