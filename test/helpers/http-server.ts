// A plain HTTP server on 127.0.0.1 for tests that play a registry's part by hand (an
// answer never sent, a cut connection, a status of the test's choosing). Closed, with
// its open connections, when the test ends.
import http from 'node:http';
import type net from 'node:net';

export interface LoopbackServer {
  /** "127.0.0.1:PORT" */
  host: string;
  /** "METHOD URL" of every request, in order. */
  hits: string[];
}

export async function serveLoopback(t: { after: (fn: () => Promise<void>) => void }, handler: http.RequestListener): Promise<LoopbackServer> {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return { host: `127.0.0.1:${(server.address() as net.AddressInfo).port}`, hits };
}
