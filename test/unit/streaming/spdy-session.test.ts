// A SPDY session against another SpdySession over a real loopback TCP pair: streams
// with half-close, ping replies, RST_STREAM, GOAWAY, and sending past the 64 KiB
// window when the peer never sends WINDOW_UPDATE.
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { test, type TestContext } from 'node:test';
import { encodeFrame, FrameParser, type SpdyFrame } from '../../../src/streaming/spdy/frames.js';
import { HeaderCompressor } from '../../../src/streaming/spdy/header-compression.js';
import { SpdySession } from '../../../src/streaming/spdy/session.js';
import type { SpdyStream } from '../../../src/streaming/spdy/stream.js';

async function socketPair(t: TestContext): Promise<[net.Socket, net.Socket]> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const accepted = once(srv, 'connection') as Promise<[net.Socket]>;
  const client = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1');
  await once(client, 'connect');
  const [server] = await accepted;
  t.after(() => {
    client.destroy();
    server.destroy();
    srv.close();
  });
  return [client, server];
}

async function sessions(t: TestContext): Promise<{ client: SpdySession; server: SpdySession }> {
  const [c, s] = await socketPair(t);
  const client = new SpdySession({ socket: c, isServer: false });
  const server = new SpdySession({ socket: s, isServer: true });
  t.after(() => {
    client.destroy();
    server.destroy();
  });
  return { client, server };
}

function readAll(s: SpdyStream): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => resolve(Buffer.concat(chunks).toString()));
    s.on('error', reject);
  });
}

test('a stream carries data both ways and half-closes each direction on its own', async (t) => {
  const { client, server } = await sessions(t);
  server.on('stream', (s) => {
    assert.equal(s.headers['streamtype'], 'stdin');
    s.reply();
    // Answer only after the client finished: proves its FIN left our side open.
    void readAll(s).then((got) => s.end(`echo:${got}`));
  });
  const c = client.openStream({ streamType: 'stdin' });
  const [replyHeaders] = (await once(c, 'reply')) as [Record<string, string>];
  assert.deepEqual(replyHeaders, {});
  c.end('ping me');
  assert.equal(await readAll(c), 'echo:ping me');
  assert.equal(c.id % 2, 1, 'client streams have odd ids');
});

test('pings are answered by the peer', async (t) => {
  const { client, server } = await sessions(t);
  await client.ping();
  await server.ping();
});

test('RST_STREAM from the peer ends the stream without touching the others', async (t) => {
  const { client, server } = await sessions(t);
  const streams: SpdyStream[] = [];
  server.on('stream', (s) => {
    s.reply();
    s.on('error', () => undefined);
    streams.push(s);
  });
  const a = client.openStream({ n: 'a' });
  const b = client.openStream({ n: 'b' });
  await once(b, 'reply');
  a.resetStream();
  await once(streams[0], 'close');
  assert.ok(streams[0].reset);
  b.end('still fine');
  assert.equal(await readAll(streams[1]), 'still fine');
});

test('GOAWAY reaches the peer and the session then closes', async (t) => {
  const { client, server } = await sessions(t);
  const goaway = once(client, 'goaway');
  server.close();
  const [info] = (await goaway) as [{ status: number }];
  assert.equal(info.status, 0);
  await once(client, 'close');
  assert.throws(() => client.openStream({}), /going away/);
});

test('the server sends far past the 64 KiB window to a peer that never sends WINDOW_UPDATE', async (t) => {
  const [c, s] = await socketPair(t);
  const server = new SpdySession({ socket: s, isServer: true });
  t.after(() => server.destroy());
  // A raw peer in the role of spdystream: opens a stream, then only reads.
  const parser = new FrameParser();
  let received = 0;
  let fin = false;
  c.on('data', (d: Buffer) => {
    for (const f of parser.push(d)) {
      if (f.type === 'DATA') {
        received += f.data.length;
        if (f.flags & 1) fin = true;
      }
    }
  });
  const comp = new HeaderCompressor();
  t.after(() => comp.close());
  const block = await comp.compress({ streamtype: 'stdout' });
  server.on('stream', (st) => {
    st.reply();
    st.end(Buffer.alloc(4 * 1024 * 1024, 1));
  });
  c.write(encodeFrame({ type: 'SYN_STREAM', streamId: 1, associatedStreamId: 0, priority: 0, slot: 0, flags: 0, headerBlock: block }));
  const deadline = Date.now() + 20_000;
  while (!fin && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(received, 4 * 1024 * 1024);
});

test('a protocol error makes the server send GOAWAY PROTOCOL_ERROR and drop the session', async (t) => {
  const [c, s] = await socketPair(t);
  const server = new SpdySession({ socket: s, isServer: true });
  t.after(() => server.destroy());
  const parser = new FrameParser();
  const frames: SpdyFrame[] = [];
  c.on('data', (d: Buffer) => frames.push(...parser.push(d)));
  // An even stream id is the server's to use, never the client's.
  const comp = new HeaderCompressor();
  t.after(() => comp.close());
  const block = await comp.compress({});
  c.write(encodeFrame({ type: 'SYN_STREAM', streamId: 2, associatedStreamId: 0, priority: 0, slot: 0, flags: 0, headerBlock: block }));
  await once(server, 'close');
  const goaway = frames.find((f) => f.type === 'GOAWAY');
  assert.ok(goaway && goaway.type === 'GOAWAY' && goaway.status === 1);
});
