// The tap reaches into grpc-js (src/cri/grpc-stream-tap.ts): these tests fail, naming
// the cause, when a grpc-js update moves what it relies on, rather than the daemon
// silently serving every call through grpc-js again.
import { Server, ServerCredentials } from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GrpcInternalsError, tapInjectorStreams } from '../../../src/cri/grpc-stream-tap.js';

test("the tap finds the injector's HTTP/2 server and grpc-js's one stream listener", () => {
  const grpc = new Server();
  const injector = grpc.createConnectionInjector(ServerCredentials.createInsecure());
  try {
    assert.doesNotThrow(() => tapInjectorStreams(grpc, () => false));
    // Tapped once: the listener in place is the tap's, still one.
    const servers = (grpc as unknown as { http2Servers: Map<{ listenerCount(e: string): number }, unknown> }).http2Servers;
    assert.equal([...servers.keys()][0].listenerCount('stream'), 1);
  } finally {
    injector.destroy();
    grpc.forceShutdown();
  }
});

test('the tap refuses a server without an injector, or with two, naming grpc-js', () => {
  const none = new Server();
  assert.throws(
    () => tapInjectorStreams(none, () => false),
    (e: unknown) => e instanceof GrpcInternalsError && /found 0/.test(e.message) && /@grpc\/grpc-js/.test(e.message),
  );
  none.forceShutdown();
  const two = new Server();
  const a = two.createConnectionInjector(ServerCredentials.createInsecure());
  const b = two.createConnectionInjector(ServerCredentials.createInsecure());
  assert.throws(() => tapInjectorStreams(two, () => false), /found 2/);
  a.destroy();
  b.destroy();
  two.forceShutdown();
});
