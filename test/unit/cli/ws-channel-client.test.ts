// The client framing is checked against the server's own decoder and encoder
// (src/streaming/ws-channels.ts), and against a real ws server speaking the protocol.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { PassThrough, Writable } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { decodeChannelMessage, encodeChannelMessage, WS_CHANNEL_PROTOCOLS } from '../../../src/streaming/ws-channels.js';
import { parseTerminalSize } from '../../../src/streaming/resize-queue.js';
import { exitCodeStatus, internalErrorStatus, successStatus } from '../../../src/streaming/status.js';
import {
  closeSignalFrame,
  exitFromStatus,
  forwardConnection,
  frame,
  PortForwardDemux,
  resizeFrame,
  runRemoteCommand,
  toWsUrl,
  unframe,
} from '../../../src/cli/ws-channel-client.js';

const V5 = WS_CHANNEL_PROTOCOLS.find((p) => p.name === 'v5.channel.k8s.io')!;

test('client frames decode on the server side, server frames on the client side', () => {
  assert.deepEqual(decodeChannelMessage(V5, frame(0, Buffer.from('hi'))), { channel: 0, data: Buffer.from('hi') });
  assert.deepEqual(unframe(encodeChannelMessage(V5, 2, Buffer.from('err')) as Buffer), { channel: 2, data: Buffer.from('err') });
  assert.equal(unframe(Buffer.alloc(0)), undefined);
  assert.deepEqual([...closeSignalFrame(0)], [255, 0]);
});

test('resize frames carry the JSON the server parses', () => {
  const msg = unframe(resizeFrame(120, 40))!;
  assert.equal(msg.channel, 4);
  assert.deepEqual(parseTerminalSize(msg.data.toString()), { width: 120, height: 40 });
});

test('exit codes come from the server Status: success 0, NonZeroExitCode its code, else 1 with a message', () => {
  assert.deepEqual(exitFromStatus(JSON.stringify(successStatus())), { exitCode: 0 });
  assert.deepEqual(exitFromStatus(JSON.stringify(exitCodeStatus(42))), { exitCode: 42 });
  const internal = exitFromStatus(JSON.stringify(internalErrorStatus('container not running')));
  assert.equal(internal.exitCode, 1);
  assert.match(internal.message!, /container not running/);
  assert.match(exitFromStatus('{').message!, /unreadable exit status/);
});

test('port-forward: the first message per channel is the port header, then data and errors', () => {
  const d = new PortForwardDemux();
  const port = Buffer.alloc(2);
  port.writeUInt16LE(8080, 0);
  assert.deepEqual(d.accept(frame(0, port)), { kind: 'header', port: 8080 });
  assert.deepEqual(d.accept(frame(1, port)), { kind: 'header', port: 8080 });
  assert.deepEqual(d.accept(frame(0, Buffer.from('data'))), { kind: 'data', data: Buffer.from('data') });
  assert.deepEqual(d.accept(frame(1, Buffer.from('boom'))), { kind: 'error', message: 'boom' });
  assert.deepEqual(d.accept(frame(3, Buffer.from('x'))), { kind: 'ignored' });
});

test('http URLs become ws URLs', () => {
  assert.equal(toWsUrl('http://127.0.0.1:1234/exec/tok'), 'ws://127.0.0.1:1234/exec/tok');
  assert.equal(toWsUrl('https://h/x'), 'wss://h/x');
});

/** A ws server on loopback that hands each connection to `serve`. */
async function wsServer(serve: (ws: WebSocket) => void, t: { after: (fn: () => unknown) => void }): Promise<string> {
  const server = http.createServer();
  const wss = new WebSocketServer({ server, handleProtocols: (p) => (p.has('v5.channel.k8s.io') ? 'v5.channel.k8s.io' : false) });
  wss.on('connection', serve);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(async () => {
    for (const c of wss.clients) c.terminate();
    await new Promise((r) => server.close(r));
  });
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/exec/token`;
}

function collector(): { w: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  return { w: new Writable({ write: (c: Buffer, _e, cb) => (chunks.push(c), cb()) }), text: () => Buffer.concat(chunks).toString() };
}

test('a remotecommand session: stdin echoed to stdout, EOF as the v5 close signal, exit code from channel 3', async (t) => {
  const url = await wsServer((ws) => {
    const got: Buffer[] = [];
    ws.on('message', (raw: Buffer) => {
      const m = unframe(raw)!;
      if (m.channel === 0) got.push(m.data);
      if (m.channel === 255 && m.data[0] === 0) {
        ws.send(frame(1, Buffer.concat(got)));
        ws.send(frame(2, 'to stderr'));
        ws.send(frame(3, JSON.stringify(exitCodeStatus(7))));
        ws.close(1000);
      }
    });
  }, t);
  const stdin = new PassThrough();
  const out = collector();
  const err = collector();
  const done = runRemoteCommand(url, { stdin, stdout: out.w, stderr: err.w });
  stdin.write('hello ');
  stdin.end('world');
  assert.deepEqual(await done, { exitCode: 7 });
  assert.equal(out.text(), 'hello world');
  assert.equal(err.text(), 'to stderr');
});

test('a session closed without a status is an error, and an HTTP refusal names its status', async (t) => {
  const url = await wsServer((ws) => ws.close(1000), t);
  await assert.rejects(runRemoteCommand(url, {}), /closed without an exit status/);
  const server = http.createServer((_req, res) => res.writeHead(404).end('not found\n'));
  server.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 404 Not Found\r\ncontent-length: 10\r\n\r\nnot found\n'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => server.close(r)));
  await assert.rejects(runRemoteCommand(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}/exec/x`, {}), /HTTP 404: not found/);
});

test('forwardConnection carries bytes both ways and half-closes with the v5 close signal', async (t) => {
  const url = await wsServer((ws) => {
    const port = Buffer.from([0x50, 0x00]);
    ws.send(frame(0, port));
    ws.send(frame(1, port));
    const got: Buffer[] = [];
    ws.on('message', (raw: Buffer) => {
      const m = unframe(raw)!;
      if (m.channel === 0) got.push(m.data);
      if (m.channel === 255) {
        ws.send(frame(0, Buffer.from(Buffer.concat(got).toString().toUpperCase())));
        ws.close(1000);
      }
    });
  }, t);
  // A local TCP pair: the "person" side writes and reads, the other side is forwarded.
  // Half-open as the verb's listener: the person's EOF must not close our write side.
  const listener = net.createServer({ allowHalfOpen: true });
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => listener.close(r)));
  const accepted = new Promise<net.Socket>((r) => listener.once('connection', r));
  const person = net.connect((listener.address() as net.AddressInfo).port, '127.0.0.1');
  const conn = await accepted;
  const errors: string[] = [];
  const forwarded = forwardConnection(url, conn, (m) => errors.push(m));
  let reply = '';
  person.on('data', (d: Buffer) => (reply += d.toString()));
  const ended = new Promise((r) => person.once('end', r));
  person.end('ping');
  await ended;
  await forwarded;
  person.destroy();
  assert.equal(reply, 'PING');
  assert.deepEqual(errors, []);
});
