// The shape every CRI handler has. Handlers receive the decoded request (proto-loader
// with keepCase, int64 as strings, enums as names, defaults filled) and return the
// response object, or throw a typed error from src/errors.ts. The instrumentation in
// src/cri/instrument.ts turns thrown errors into gRPC statuses; handlers never do.
//
// The types come from api/cri.proto and api/sandlot.proto through proto-loader-gen-types
// (src/types/cri/, committed; a leaf, so the layers below may use them too;
// test/unit/cri/generated-types.test.ts fails when they are stale). A handler of method
// M gets `M`Request__Output — the decoded shape, every field present — and returns
// `M`Response in its permissive form (fields optional, int64 as string or number),
// which is what grpc-js serializes. Validators (parse…) take the permissive request
// form, so they also check what a test or a hand-built request leaves out.
import type { Logger } from 'pino';
import type { ImageServiceDefinition, ImageServiceHandlers } from '../types/cri/runtime/v1/ImageService.js';
import type { RuntimeServiceDefinition, RuntimeServiceHandlers } from '../types/cri/runtime/v1/RuntimeService.js';
import type { ImagesDefinition, ImagesHandlers } from '../types/cri/sandlot/v1/Images.js';

export interface CallContext {
  /** Logger bound to the call (`rpc` field set). */
  log: Logger;
  /** Aborted when the client cancels or the deadline passes. */
  signal: AbortSignal;
}

/** The generated handler interfaces without the `[name: string]` index signature they inherit. */
type Known<T> = { [K in keyof T as string extends K ? never : K]: T[K] };

/** Every method sandlot serves: runtime.v1.RuntimeService, runtime.v1.ImageService, sandlot.v1.Images (no name is shared). */
type Methods = Known<RuntimeServiceHandlers> & Known<ImageServiceHandlers> & Known<ImagesHandlers>;

/** The generated service definitions: each method's request and response types, both forms. */
type Definitions = Known<RuntimeServiceDefinition> & Known<ImageServiceDefinition> & Known<ImagesDefinition>;

export type CriMethod = keyof Definitions;
/** Methods with one answer: grpc-js gives their handlers (call, callback); a streaming handler gets (call). */
export type UnaryMethod = { [M in CriMethod]: Parameters<Methods[M]>['length'] extends 2 ? M : never }[CriMethod];
/** Server-streaming methods (Stream*, GetContainerEvents, PullWithProgress). */
export type StreamMethod = Exclude<CriMethod, UnaryMethod>;

/** The decoded request of method M (defaults filled: every field present, messages may be null). */
export type RequestOf<M extends CriMethod> = ReturnType<Definitions[M]['requestDeserialize']>;
/** The request of method M in its permissive form (what a client sends; fields optional). */
export type RequestInputOf<M extends CriMethod> = Parameters<Definitions[M]['requestSerialize']>[0];
/** The response (or each streamed message) of method M, as handed to grpc-js: the permissive form. */
export type ResponseOf<M extends CriMethod> = Parameters<Definitions[M]['responseSerialize']>[0];
/** The response of method M as a client decodes it (same loader options: every field present). */
export type ResponseOutputOf<M extends CriMethod> = ReturnType<Definitions[M]['responseDeserialize']>;

export type UnaryHandler<M extends UnaryMethod> = (req: RequestOf<M>, ctx: CallContext) => Promise<ResponseOf<M>>;
/** Server-streaming RPCs: yield each response message (a plain generator when nothing is awaited). */
export type StreamHandler<M extends StreamMethod> = (req: RequestOf<M>, ctx: CallContext) => AsyncIterable<ResponseOf<M>> | Iterable<ResponseOf<M>>;

/** Handlers keyed by method name (`PullImage`, `RunPodSandbox` …), each typed by its RPC. */
export interface HandlerSet {
  unary?: { [M in UnaryMethod]?: UnaryHandler<M> };
  stream?: { [M in StreamMethod]?: StreamHandler<M> };
}

/**
 * A handler looked up by a method name known only at run time (the service definition
 * being served, a test's table). The request handed to it must be the decoded request of
 * that method: the definition of the same name decodes it.
 */
export type AnyUnaryHandler = (req: object, ctx: CallContext) => Promise<unknown>;
export type AnyStreamHandler = (req: object, ctx: CallContext) => AsyncIterable<unknown> | Iterable<unknown>;

/**
 * The answer of a unary handler that awaits nothing: `compute` runs now, and what it
 * throws (a validation error) becomes the rejection, as from an `async` function, so a
 * caller of the handler sees a rejected promise, never a synchronous throw.
 */
export function answer<T>(compute: () => T): Promise<T> {
  return new Promise<T>((resolve) => {
    resolve(compute());
  });
}

export function unaryHandlerOf(set: HandlerSet, method: string): AnyUnaryHandler | undefined {
  return (set.unary as Record<string, AnyUnaryHandler | undefined> | undefined)?.[method];
}

export function streamHandlerOf(set: HandlerSet, method: string): AnyStreamHandler | undefined {
  return (set.stream as Record<string, AnyStreamHandler | undefined> | undefined)?.[method];
}
