// Shared setup for the streaming integration tests: a real StreamingServer on a free
// loopback port with the host-process backend, torn down even when a test fails.
import net from 'node:net';
import type { TestContext } from 'node:test';
import { pino } from 'pino';
import { StreamingServer, type StreamingServerOptions } from '../../../src/streaming/server.js';
import { alive } from '../../helpers/wait.js';
import { HostBackend } from './host-backend.js';

export async function startServer(t: TestContext, extra: Partial<StreamingServerOptions> = {}): Promise<{ server: StreamingServer; backend: HostBackend }> {
  const backend = new HostBackend();
  const server = await StreamingServer.start({
    address: '127.0.0.1:0',
    backend,
    log: pino({ level: process.env.SANDLOT_TEST_LOG ?? 'silent' }),
    ...extra,
  });
  t.after(async () => {
    await server.close();
    backend.stopAll();
  });
  return { server, backend };
}

/** A TCP server on 127.0.0.1 that answers each connection with `<tag>:<all it read>` and closes. */
export async function startEchoServer(t: TestContext, tag: string): Promise<number> {
  const srv = net.createServer((sock) => {
    const chunks: Buffer[] = [];
    sock.on('data', (d) => chunks.push(d));
    sock.on('end', () => sock.end(`${tag}:${Buffer.concat(chunks).toString()}`));
    sock.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => srv.close(() => resolve())));
  return (srv.address() as net.AddressInfo).port;
}

// The one poll-with-a-deadline of the tests (test/helpers/wait.ts).
export { waitFor } from '../../helpers/wait.js';

/** Has process `pid` gone (no such process)? */
export function processGone(pid: number): boolean {
  return !alive(pid);
}
