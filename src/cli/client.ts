// A CRI client over the unix socket, for the CLI verbs and the tests.
import { credentials, Metadata, type Client, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { loadCriClientConstructors } from '../cri/proto.js';

const MAX_ANSWER_BYTES = 40 * 1024 * 1024;

export type CriMessage = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface CallOptions {
  /** Milliseconds until the call's deadline. */
  timeoutMs?: number;
}

export class CriClient {
  readonly runtime: Client;
  readonly image: Client;

  constructor(readonly socketPath: string) {
    const ctors = loadCriClientConstructors();
    const target = `unix://${socketPath}`;
    // Answers larger than grpc-js's default 4 MiB: an ExecSync answer holds up to 16 MiB
    // of each stream. Requests are not capped here; the daemon takes up to 16 MiB.
    const limits = { 'grpc.max_receive_message_length': MAX_ANSWER_BYTES };
    this.runtime = new ctors.RuntimeService(target, credentials.createInsecure(), limits);
    this.image = new ctors.ImageService(target, credentials.createInsecure(), limits);
  }

  private unary(client: Client, method: string, req: CriMessage, opts: CallOptions): Promise<CriMessage> {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const fn = (client as any)[method] as Function | undefined;
    if (typeof fn !== 'function') return Promise.reject(new Error(`no CRI method "${method}"`));
    const deadline = new Date(Date.now() + (opts.timeoutMs ?? 120_000));
    return new Promise((resolve, reject) => {
      fn.call(client, req, new Metadata(), { deadline }, (err: ServiceError | null, res: CriMessage) =>
        err ? reject(err) : resolve(res),
      );
    });
  }

  /** Calls a unary RuntimeService method by name. */
  runtimeCall(method: string, req: CriMessage = {}, opts: CallOptions = {}): Promise<CriMessage> {
    return this.unary(this.runtime, method, req, opts);
  }

  /** Calls a unary ImageService method by name. */
  imageCall(method: string, req: CriMessage = {}, opts: CallOptions = {}): Promise<CriMessage> {
    return this.unary(this.image, method, req, opts);
  }

  /** Opens a server-streaming RuntimeService method (GetContainerEvents); cancel() ends it. */
  runtimeStream(method: string, req: CriMessage = {}): ClientReadableStream<CriMessage> {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const fn = (this.runtime as any)[method] as Function | undefined;
    if (typeof fn !== 'function') throw new Error(`no CRI method "${method}"`);
    return fn.call(this.runtime, req, new Metadata()) as ClientReadableStream<CriMessage>;
  }

  close(): void {
    this.runtime.close();
    this.image.close();
  }
}
