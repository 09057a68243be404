import assert from 'node:assert/strict';
import { test } from 'node:test';
import hpack from 'hpack.js';
import { encodeHeaderFrames, firstAuthorityIsValid, isValidAuthority } from '../../../src/cri/authority-front.js';
import { frame } from '../../helpers/http2-frames.js';

test('a socket path is not a valid authority, host names and host:port are', () => {
  assert.equal(isValidAuthority('/run/sandlot/sandlot.sock'), false);
  assert.equal(isValidAuthority('unix:///run/x.sock'), false);
  assert.equal(isValidAuthority('localhost'), true);
  assert.equal(isValidAuthority('127.0.0.1:8080'), true);
  assert.equal(isValidAuthority('[::1]:80'), true);
});

test('re-encoded header frames decode to the same headers and keep END_STREAM and priority', () => {
  const headers = [
    { name: ':method', value: 'POST' },
    { name: ':authority', value: 'localhost' },
    { name: 'x-long', value: 'v'.repeat(40_000) },
  ];
  const priority = Buffer.from([0, 0, 0, 3, 15]);
  const out = encodeHeaderFrames(5, 1, priority, headers);
  // First frame: HEADERS with END_STREAM|PRIORITY, no END_HEADERS (the block is > 16 KiB).
  assert.equal(out[3], 0x1);
  assert.equal(out[4], 0x1 | 0x20);
  assert.equal(out.readUInt32BE(5), 5);
  const fragments: Buffer[] = [];
  let off = 0;
  let lastFlags = 0;
  while (off < out.length) {
    const len = out.readUIntBE(off, 3);
    assert.ok(len <= 16384, 'no frame exceeds the default max frame size');
    let payload = out.subarray(off + 9, off + 9 + len);
    if (off === 0) payload = payload.subarray(5);
    fragments.push(payload);
    lastFlags = out[off + 4]!;
    off += 9 + len;
  }
  assert.equal(lastFlags & 0x4, 0x4, 'the last frame carries END_HEADERS');
  const dec = hpack.decompressor.create({ table: { size: 4096 } });
  dec.write(Buffer.concat(fragments));
  dec.execute();
  // The decompressor is an object-mode Transform: each read() is one header field, or null.
  type Field = { name: string; value: string };
  const got: Field[] = [];
  for (let h = dec.read() as Field | null; h !== null; h = dec.read() as Field | null) got.push({ name: h.name, value: h.value });
  assert.deepEqual(got, headers);
});

/** A HEADERS or CONTINUATION frame of stream 1 around `payload`. */
function streamFrame(type: number, flags: number, payload: Buffer): Buffer {
  return frame(type, flags, 1, payload);
}

function encodeBlock(fields: Array<{ name: string; value: string; huffman: boolean; neverIndex?: boolean }>): Buffer {
  const comp = hpack.compressor.create({ table: { size: 4096 } });
  comp.write(fields);
  const parts: Buffer[] = [];
  for (let c = comp.read() as Buffer | null; c !== null; c = comp.read() as Buffer | null) parts.push(c);
  return Buffer.concat(parts);
}

test("the first block's authority is judged the same however it is encoded", () => {
  // What grpc-go sent first on a unix socket (bench/lib/cri-raw): :method and :scheme
  // indexed, :path and :authority Huffman literals with incremental indexing.
  const grpcGo = Buffer.from(
    '8386459962cb6a49a92afdc2bedb6a49a92ee2d9dcc42b1c4b620c7abf4186a0e41d139d095f8b1d75d0620d263d4c4d65647a8b9acac8b4c7602bb2caecff40027465864d833505b11f40899acac8b24d494f6a7f85085f7df7e9',
    'hex',
  );
  assert.equal(firstAuthorityIsValid([streamFrame(1, 4, grpcGo)]), true);
  const cases: Array<{ authority: string | undefined; huffman: boolean; first?: boolean; neverIndex?: boolean }> = [];
  for (const authority of ['localhost', '/run/sandlot/sandlot.sock', 'unix:///run/x.sock', '', '127.0.0.1:8080', 'a'.repeat(300), undefined]) {
    for (const huffman of [true, false]) {
      cases.push({ authority, huffman }, { authority, huffman, first: true }, { authority, huffman, neverIndex: true });
    }
  }
  for (const c of cases) {
    const fields = [
      { name: ':method', value: 'POST', huffman: c.huffman },
      { name: ':path', value: '/runtime.v1.RuntimeService/Version', huffman: c.huffman },
      { name: 'content-type', value: 'application/grpc', huffman: c.huffman },
    ];
    if (c.authority !== undefined) {
      const field = { name: ':authority', value: c.authority, huffman: c.huffman, neverIndex: c.neverIndex };
      if (c.first) fields.unshift(field);
      else fields.splice(2, 0, field);
    }
    const block = encodeBlock(fields);
    const want = isValidAuthority(c.authority ?? '');
    assert.equal(firstAuthorityIsValid([streamFrame(1, 4, block)]), want, JSON.stringify(c));
    // The same block cut into a HEADERS and a CONTINUATION frame.
    const cut = Math.floor(block.length / 2);
    assert.equal(firstAuthorityIsValid([streamFrame(1, 0, block.subarray(0, cut)), streamFrame(9, 4, block.subarray(cut))]), want, JSON.stringify(c));
  }
  // The indexed static entry :authority "" and an authority after a regular header
  // (decoded in full: the fast read stops at the first regular field).
  assert.equal(firstAuthorityIsValid([streamFrame(1, 4, Buffer.from([0x83, 0x81]))]), true);
  // Literals without indexing (0x01) and never indexed (0x11) with the static name.
  for (const kind of [0x01, 0x11]) {
    for (const [authority, want] of [
      ['localhost', true],
      ['/run/x.sock', false],
    ] as const) {
      const value = Buffer.from(authority);
      assert.equal(firstAuthorityIsValid([streamFrame(1, 4, Buffer.concat([Buffer.from([0x83, kind, value.length]), value]))]), want, `${kind} ${authority}`);
    }
  }
  const late = encodeBlock([
    { name: 'content-type', value: 'application/grpc', huffman: true },
    { name: ':authority', value: '/run/x.sock', huffman: true },
  ]);
  assert.equal(firstAuthorityIsValid([streamFrame(1, 4, late)]), false);
});

test('a first block hpack.js cannot decode is left to nghttp2 (judged valid), not thrown', () => {
  for (const bad of [[0xff], [0xbf], [0x41, 0x85, 0xff], [0x00, 0x85], [0x41, 0x81, 0xff]]) {
    assert.equal(firstAuthorityIsValid([streamFrame(1, 4, Buffer.from(bad))]), true, Buffer.from(bad).toString('hex'));
  }
});
