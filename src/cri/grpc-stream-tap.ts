// The one place sandlot reaches inside grpc-js. A connection injector
// (Server.createConnectionInjector) makes a Node HTTP/2 server of its own and listens to
// its 'stream' event; grpc-js offers no public way to see a stream before that listener
// runs its per-call path. The tap finds that HTTP/2 server in the grpc-js Server's
// private `http2Servers` map and puts itself in front of grpc-js's listener: a stream the
// tap's `take` serves never reaches grpc-js, every other one goes to grpc-js's listener
// unchanged (same arguments, same order of events).
//
// Checked by shape, never assumed: if a grpc-js update renames the map or changes how it
// listens, tapInjectorStreams throws, so the CriServer does not start and every test
// that starts one fails (test/unit/cri/grpc-stream-tap.test.ts names the cause).
import type { Server } from '@grpc/grpc-js';
import type { EventEmitter } from 'node:events';
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';

/** Serves the stream (true) or leaves it to grpc-js (false). */
export type StreamTaker = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => boolean;

type StreamListener = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) => void;

export class GrpcInternalsError extends Error {
  constructor(what: string) {
    super(`tapping grpc-js's HTTP/2 streams: ${what} (did @grpc/grpc-js change? see src/cri/grpc-stream-tap.ts)`);
    this.name = 'GrpcInternalsError';
  }
}

function isEmitter(v: unknown): v is EventEmitter {
  return (
    typeof v === 'object' && v !== null && typeof (v as EventEmitter).listeners === 'function' && typeof (v as EventEmitter).prependListener === 'function'
  );
}

/**
 * Puts `take` in front of grpc-js for every stream of the HTTP/2 server behind the one
 * connection injector `grpc` has (call right after createConnectionInjector, before any
 * bindAsync: the server must have exactly one).
 */
export function tapInjectorStreams(grpc: Server, take: StreamTaker): void {
  const servers: unknown = (grpc as unknown as { http2Servers?: unknown }).http2Servers;
  if (!(servers instanceof Map)) throw new GrpcInternalsError('the Server has no http2Servers map');
  if (servers.size !== 1) throw new GrpcInternalsError(`expected the injector's HTTP/2 server alone in http2Servers, found ${servers.size}`);
  const h2: unknown = servers.keys().next().value;
  if (!isEmitter(h2)) throw new GrpcInternalsError('the http2Servers key is no event emitter');
  const listeners = h2.listeners('stream');
  if (listeners.length !== 1) throw new GrpcInternalsError(`expected grpc-js's one 'stream' listener, found ${listeners.length}`);
  const grpcListener = listeners[0] as StreamListener;
  h2.removeListener('stream', grpcListener);
  h2.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) => {
    if (!take(stream, headers)) grpcListener.call(h2, stream, headers, flags, rawHeaders);
  });
}
