// A CRI client over the unix socket, for the CLI verbs and the tests. Calls are typed by
// method: the request in its permissive form, the answer as decoded with the project's
// loader options (src/cri/handler-types.ts: RequestInputOf / ResponseOutputOf).
import { credentials, makeClientConstructor, type ClientReadableStream, type MethodDefinition, type ServiceError } from '@grpc/grpc-js';
import { loadCriServices } from '../cri/proto.js';
import { traceMetadata, tracedCall } from './call-trace.js';
import type { RequestInputOf, ResponseOutputOf, StreamMethod, UnaryMethod } from '../cri/handler-types.js';
import type { ImageServiceClient, ImageServiceDefinition } from '../types/cri/runtime/v1/ImageService.js';
import type { RuntimeServiceClient, RuntimeServiceDefinition } from '../types/cri/runtime/v1/RuntimeService.js';

const MAX_ANSWER_BYTES = 40 * 1024 * 1024;

/**
 * A loose request, for callers that build one without a method's type (tests sending
 * wrong shapes to see the daemon refuse them). Answers are never read through it: they
 * are typed by method.
 */
export type CriMessage = Record<string, unknown>;

export interface CallOptions {
  /** Milliseconds until the call's deadline. */
  timeoutMs?: number;
}

/** The named methods of a generated service definition (without its `[name: string]` index signature). */
type MethodsOf<T> = keyof { [K in keyof T as string extends K ? never : K]: T[K] };
/** Unary runtime.v1.RuntimeService methods. */
export type RuntimeUnaryMethod = Extract<UnaryMethod, MethodsOf<RuntimeServiceDefinition>>;
/** Server-streaming runtime.v1.RuntimeService methods (GetContainerEvents, StreamPodSandboxMetrics …). */
export type RuntimeStreamMethod = Extract<StreamMethod, MethodsOf<RuntimeServiceDefinition>>;
/** Unary runtime.v1.ImageService methods. */
export type ImageUnaryMethod = Extract<UnaryMethod, MethodsOf<ImageServiceDefinition>>;

/** What a call needs of a method's definition, typed by its request and decoded answer. */
interface Wire<Req, Res> {
  path: string;
  requestSerialize: (req: Req) => Buffer;
  responseDeserialize: (buf: Buffer) => Res;
}

/**
 * Method M of a loaded service definition. The definitions are loaded with the loader
 * options the generated types are made with (src/cri/proto.ts), so M's entry serializes
 * M's request and decodes M's answer; TypeScript cannot follow that through a generic M.
 */
function wireOf<Req, Res>(def: Record<string, MethodDefinition<unknown, unknown> | undefined>, method: string): Wire<Req, Res> {
  const m = def[method];
  if (!m) throw new Error(`no CRI method "${method}"`);
  return m as unknown as Wire<Req, Res>;
}

export class CriClient {
  /** The generated stubs, for callers that call a method by its own name (tests). */
  readonly runtime: RuntimeServiceClient;
  readonly image: ImageServiceClient;
  private readonly runtimeDef: Record<string, MethodDefinition<unknown, unknown> | undefined>;
  private readonly imageDef: Record<string, MethodDefinition<unknown, unknown> | undefined>;

  constructor(readonly socketPath: string) {
    const services = loadCriServices();
    this.runtimeDef = services.RuntimeService;
    this.imageDef = services.ImageService;
    const target = `unix://${socketPath}`;
    // Answers larger than grpc-js's default 4 MiB: an ExecSync answer holds up to 16 MiB
    // of each stream. Requests are not capped here; the daemon takes up to 16 MiB.
    // No channelz: nothing reads its per-call books.
    const limits = { 'grpc.max_receive_message_length': MAX_ANSWER_BYTES, 'grpc.enable_channelz': 0 };
    // makeClientConstructor is what loadPackageDefinition builds each service's stub with.
    const Runtime = makeClientConstructor(services.RuntimeService, 'RuntimeService');
    const Image = makeClientConstructor(services.ImageService, 'ImageService');
    this.runtime = new Runtime(target, credentials.createInsecure(), limits) as unknown as RuntimeServiceClient;
    this.image = new Image(target, credentials.createInsecure(), limits) as unknown as ImageServiceClient;
  }

  private unary<Req, Res>(client: RuntimeServiceClient | ImageServiceClient, wireFor: () => Wire<Req, Res>, req: Req, opts: CallOptions): Promise<Res> {
    const deadline = new Date(Date.now() + (opts.timeoutMs ?? 120_000));
    // An unknown method throws here: the call rejects.
    let wire: Wire<Req, Res>;
    try {
      wire = wireFor();
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    return tracedCall(
      wire.path,
      (md) =>
        new Promise((resolve, reject) => {
          client.makeUnaryRequest(wire.path, wire.requestSerialize, wire.responseDeserialize, req, md, { deadline }, (err: ServiceError | null, res?: Res) => {
            if (err) reject(err);
            else if (res === undefined) reject(new Error(`CRI ${wire.path}: no answer`));
            else resolve(res);
          });
        }),
    );
  }

  /** Calls unary RuntimeService method M; the answer is M's decoded response. */
  runtimeCall<M extends RuntimeUnaryMethod>(method: M, req: RequestInputOf<M> | CriMessage, opts: CallOptions = {}): Promise<ResponseOutputOf<M>> {
    return this.unary(this.runtime, () => wireOf<RequestInputOf<M> | CriMessage, ResponseOutputOf<M>>(this.runtimeDef, method), req, opts);
  }

  /** Calls unary ImageService method M; the answer is M's decoded response. */
  imageCall<M extends ImageUnaryMethod>(method: M, req: RequestInputOf<M> | CriMessage, opts: CallOptions = {}): Promise<ResponseOutputOf<M>> {
    return this.unary(this.image, () => wireOf<RequestInputOf<M> | CriMessage, ResponseOutputOf<M>>(this.imageDef, method), req, opts);
  }

  /** Opens server-streaming RuntimeService method M (GetContainerEvents); cancel() ends it. */
  runtimeStream<M extends RuntimeStreamMethod>(method: M, req: RequestInputOf<M> | CriMessage): ClientReadableStream<ResponseOutputOf<M>> {
    const wire = wireOf<RequestInputOf<M> | CriMessage, ResponseOutputOf<M>>(this.runtimeDef, method);
    return this.runtime.makeServerStreamRequest(wire.path, wire.requestSerialize, wire.responseDeserialize, req, traceMetadata());
  }

  close(): void {
    this.runtime.close();
    this.image.close();
  }
}
