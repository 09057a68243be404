// The CRI gRPC server on a unix socket. Connections are accepted by a plain net.Server,
// opened (src/cri/connection-opener.ts: the socket itself, or the AuthorityFront over it
// for Go clients that send the socket path as :authority) and injected into grpc-js,
// whose HTTP/2 sessions carry every call. Unary calls are read and answered by the lean
// path (src/cri/unary-streams.ts), the rest by grpc-js.
import { Server, ServerCredentials, type ConnectionInjector, type ServiceDefinition } from '@grpc/grpc-js';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { errnoCode, FailedPreconditionError } from '../errors.js';
import { openConnection } from './connection-opener.js';
import type { HandlerSet } from './handler-types.js';
import { tapInjectorStreams } from './grpc-stream-tap.js';
import { implementService, InflightCalls, tolerantDefinition, type InstrumentOptions, type UnaryRoute } from './instrument.js';
import { loadCriServices, type CriServices } from './proto.js';
import type { ExtraService } from './sandlot-images.js';
import { UnaryStreams } from './unary-streams.js';

export const SOCKET_MODE = 0o660;
const PROBE_TIMEOUT_MS = 2000;
/** How long finished connections get to flush and close after a shutdown's GOAWAY. */
const SOCKET_LINGER_MS = 2000;
/**
 * The kubelet sends CRI messages up to 16 MiB; sandlot takes them (grpc-js defaults to
 * 4 MiB in). What goes out is not capped: an ExecSync answer holds up to 16 MiB of each
 * stream (EXEC_SYNC_OUTPUT_LIMIT_BYTES) plus framing.
 */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export interface CriServerOptions extends InstrumentOptions {
  socketPath: string;
  runtimeHandlers: HandlerSet;
  imageHandlers: HandlerSet;
  /** Non-CRI services served on the same socket (sandlot.v1.Images). */
  extraServices?: ExtraService[];
  /** The CRI definitions, when the caller loaded them already (loadApiServices); else loaded here. */
  services?: CriServices;
  /**
   * Who serves unary calls: the lean path (the default) or grpc-js's own, kept so that
   * tests can check both put the same bytes on the wire.
   */
  unaryPath?: 'lean' | 'grpc-js';
}

/** Thrown when another live server already answers on the socket. */
export class SocketInUseError extends FailedPreconditionError {}

/**
 * Refuses when something answers on `socketPath`; removes a stale socket file with
 * nobody behind it. A path that exists but is not a socket is left alone: an error.
 */
export async function claimSocketPath(socketPath: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(socketPath);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return;
    throw e;
  }
  if (!st.isSocket()) {
    throw new FailedPreconditionError(`claiming socket "${socketPath}": the path exists and is not a socket`);
  }
  const alive = await new Promise<boolean>((resolve) => {
    const c = net.connect(socketPath);
    const timer = setTimeout(() => {
      c.destroy();
      resolve(true); // accepted but silent still means somebody is there
    }, PROBE_TIMEOUT_MS);
    c.once('connect', () => {
      clearTimeout(timer);
      c.destroy();
      resolve(true);
    });
    c.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  if (alive) {
    throw new SocketInUseError(`claiming socket "${socketPath}": another server is already listening on it`);
  }
  fs.unlinkSync(socketPath);
}

export class CriServer {
  private readonly grpc = new Server({
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    // sandlot serves no channelz service; its per-call books cost ~6 % of a read's CPU.
    'grpc.enable_channelz': 0,
  });
  private readonly injector: ConnectionInjector;
  private readonly listener: net.Server;
  private readonly log: Logger;
  private readonly socketPath: string;
  private readonly sockets = new Set<net.Socket>();
  private readonly inflight = new InflightCalls();
  private readonly unary: UnaryStreams;

  private constructor(opts: CriServerOptions) {
    this.log = opts.log;
    this.socketPath = opts.socketPath;
    const services = opts.services ?? loadCriServices();
    const instrument = { ...opts, inflight: this.inflight };
    const unary: UnaryRoute[] = [];
    const serve = (name: string, definition: ServiceDefinition, handlers: HandlerSet): void => {
      const tolerant = tolerantDefinition(definition);
      const impl = implementService(instrument, name, tolerant, handlers);
      this.grpc.addService(tolerant, impl.grpc);
      unary.push(...impl.unary);
    };
    serve('RuntimeService', services.RuntimeService, opts.runtimeHandlers);
    serve('ImageService', services.ImageService, opts.imageHandlers);
    for (const extra of opts.extraServices ?? []) serve(extra.name, extra.definition, extra.handlers);
    this.injector = this.grpc.createConnectionInjector(ServerCredentials.createInsecure());
    // Unary calls take the lean path; streaming and unknown methods stay with grpc-js.
    this.unary = new UnaryStreams({ routes: unary, maxReceiveBytes: MAX_MESSAGE_BYTES });
    if (opts.unaryPath !== 'grpc-js') tapInjectorStreams(this.grpc, this.unary.take);
    this.listener = net.createServer((sock) => this.accept(sock));
  }

  /** CRI calls begun since the start (in flight or done). */
  get callsStarted(): number {
    return this.inflight.started;
  }

  /** Unary calls served by the lean path (src/cri/unary-streams.ts) rather than grpc-js. */
  get unaryStreamsTaken(): number {
    return this.unary.taken;
  }

  /** Calls being served now. */
  get callsInFlight(): number {
    return this.inflight.size;
  }

  static async listen(opts: CriServerOptions): Promise<CriServer> {
    fs.mkdirSync(path.dirname(opts.socketPath), { recursive: true, mode: 0o750 });
    await claimSocketPath(opts.socketPath);
    const server = new CriServer(opts);
    await new Promise<void>((resolve, reject) => {
      server.listener.once('error', reject);
      server.listener.listen(opts.socketPath, () => {
        server.listener.off('error', reject);
        resolve();
      });
    });
    fs.chmodSync(opts.socketPath, SOCKET_MODE);
    return server;
  }

  private accept(sock: net.Socket): void {
    this.sockets.add(sock);
    sock.once('close', () => this.sockets.delete(sock));
    openConnection(sock, (conn) => {
      conn.on('error', (e) => {
        // A client that hangs up mid-write is ordinary; anything else is worth a line.
        const code = errnoCode(e);
        if (code !== 'EPIPE' && code !== 'ECONNRESET') this.log.debug({ err: e }, 'connection error');
      });
      this.injector.injectConnection(conn);
    });
  }

  /** Stops accepting, lets in-flight calls finish (up to `graceMs`), removes the socket. */
  async shutdown(graceMs: number): Promise<void> {
    // close() stops accepting at once; its callback waits for open connections,
    // which the drain below ends.
    const closed = new Promise<void>((resolve) => this.listener.close(() => resolve()));
    try {
      fs.unlinkSync(this.socketPath);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') this.log.warn({ err: e }, 'removing the socket');
    }
    // grpc-js's tryShutdown does not wait for calls on injected connections, so the
    // server counts them itself and waits (up to the grace) before closing anything.
    // drain() sends GOAWAY: clients open no new streams, the ones in flight go on.
    this.injector.drain(graceMs);
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
    await Promise.race([this.inflight.idle(), graceOver]);
    if (this.inflight.size > 0) this.log.warn({ calls: this.inflight.size }, 'shutdown grace over: cancelling calls');
    clearTimeout(timer);
    // Answers of the last calls may still be on their way out: let the sessions close
    // their connections after the GOAWAY, and only then cut what is left.
    this.grpc.tryShutdown(() => undefined);
    const deadline = Date.now() + SOCKET_LINGER_MS;
    while (this.sockets.size > 0 && Date.now() < deadline) await sleep(10);
    this.grpc.forceShutdown();
    this.injector.destroy();
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}
