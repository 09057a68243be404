// The connection opener (src/cri/connection-opener.ts) on a real unix socket: it answers
// the client preface with an empty SETTINGS frame, keeps the client's frames in order
// without the ACK of that frame, and hands over the socket itself (valid :authority) or
// the AuthorityFront over it (a socket path as :authority).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { AuthorityFront, encodeHeaderFrames } from '../../../src/cri/authority-front.js';
import { openConnection } from '../../../src/cri/connection-opener.js';
import { frame, PREFACE } from '../../helpers/http2-frames.js';

const SETTINGS = frame(0x4, 0, 0);
const SETTINGS_ACK = frame(0x4, 0x1, 0);
const WINDOW_UPDATE = frame(0x8, 0, 0, Buffer.from([0, 0, 0x10, 0]));

function headers(authority: string): Buffer {
  return encodeHeaderFrames(1, 1, undefined, [
    { name: ':method', value: 'POST' },
    { name: ':scheme', value: 'http' },
    { name: ':path', value: '/runtime.v1.RuntimeService/Version' },
    { name: ':authority', value: authority },
  ]);
}

/** A server whose connections go through the opener; resolves with what it handed over. */
async function serveOne(t: TestContext): Promise<{ socket: string; handed: Promise<Duplex> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opener-'));
  const socket = path.join(dir, 's.sock');
  let handedOver!: (d: Duplex) => void;
  const handed = new Promise<Duplex>((resolve) => (handedOver = resolve));
  const server = net.createServer((sock) => openConnection(sock, handedOver));
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  t.after(() => {
    server.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { socket, handed };
}

async function connect(t: TestContext, socket: string): Promise<{ c: net.Socket; received: () => Buffer }> {
  const c = net.connect(socket);
  t.after(() => c.destroy());
  const got: Buffer[] = [];
  c.on('data', (d: Buffer) => got.push(d));
  await new Promise((resolve) => c.once('connect', resolve));
  return { c, received: () => Buffer.concat(got) };
}

/** Reads from `d` until `n` bytes came. */
async function readBytes(d: Duplex, n: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let have = 0;
  for await (const chunk of d) {
    parts.push(chunk as Buffer);
    have += (chunk as Buffer).length;
    if (have >= n) break;
  }
  return Buffer.concat(parts);
}

async function until(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('a client that waits for the server preface gets an empty SETTINGS frame before it sends a request', async (t) => {
  const { socket } = await serveOne(t);
  const { c, received } = await connect(t, socket);
  c.write(Buffer.concat([PREFACE, SETTINGS]));
  await until(() => received().length >= 9);
  assert.deepEqual(received(), SETTINGS);
});

test('a valid authority: the socket itself is handed over, with the client frames in order and the ACK left out', async (t) => {
  const { socket, handed } = await serveOne(t);
  const { c } = await connect(t, socket);
  const req = headers('localhost');
  // The ACK comes after the request here (a client that did not wait): it is still dropped.
  c.write(Buffer.concat([PREFACE, SETTINGS, WINDOW_UPDATE, req]));
  await new Promise((r) => setTimeout(r, 20));
  c.write(SETTINGS_ACK);
  const conn = await handed;
  assert.ok(conn instanceof net.Socket, 'the socket itself');
  const expected = Buffer.concat([PREFACE, SETTINGS, WINDOW_UPDATE, req]);
  assert.deepEqual(await readBytes(conn, expected.length), expected);
});

test('a socket path as authority: the AuthorityFront is handed over and rewrites it', async (t) => {
  const { socket, handed } = await serveOne(t);
  const { c } = await connect(t, socket);
  c.write(Buffer.concat([PREFACE, SETTINGS, SETTINGS_ACK, headers('/run/sandlot/sandlot.sock')]));
  const conn = await handed;
  assert.ok(conn instanceof AuthorityFront);
  const expected = Buffer.concat([PREFACE, SETTINGS, headers('localhost')]);
  assert.deepEqual(await readBytes(conn, expected.length), expected);
});

test('bytes that are no HTTP/2 preface are handed over untouched, and nothing is written to the client', async (t) => {
  const { socket, handed } = await serveOne(t);
  const { c, received } = await connect(t, socket);
  const junk = Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  c.write(junk);
  const conn = await handed;
  assert.ok(conn instanceof net.Socket);
  assert.deepEqual(await readBytes(conn, junk.length), junk);
  assert.equal(received().length, 0);
});
