// SPDY/3.1 framing on its own: encode/decode round trips, frames cut anywhere by TCP,
// header blocks and the shared zlib dictionary (checked against Go's framer output).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import zlib from 'node:zlib';
import { SPDY3_DICTIONARY } from '../../../src/streaming/spdy/dictionary.js';
import {
  decodeHeaderBlock,
  encodeFrame,
  encodeHeaderBlock,
  FLAG_FIN,
  FrameParser,
  SpdyProtocolError,
  type SpdyFrame,
} from '../../../src/streaming/spdy/frames.js';
import { HeaderCompressor, HeaderDecompressor } from '../../../src/streaming/spdy/header-compression.js';

const FRAMES: SpdyFrame[] = [
  { type: 'DATA', streamId: 7, flags: FLAG_FIN, data: Buffer.from('hello') },
  { type: 'DATA', streamId: 0x7fffffff, flags: 0, data: Buffer.alloc(0) },
  { type: 'SYN_STREAM', streamId: 1, associatedStreamId: 0, priority: 3, slot: 0, flags: FLAG_FIN, headerBlock: Buffer.from([1, 2, 3]) },
  { type: 'SYN_REPLY', streamId: 1, flags: 0, headerBlock: Buffer.from([9]) },
  { type: 'HEADERS', streamId: 5, flags: FLAG_FIN, headerBlock: Buffer.alloc(0) },
  { type: 'RST_STREAM', streamId: 3, status: 5 },
  {
    type: 'SETTINGS',
    flags: 1,
    entries: [
      { flags: 1, id: 7, value: 65536 },
      { flags: 0, id: 4, value: 100 },
    ],
  },
  { type: 'PING', id: 0xfffffffe },
  { type: 'GOAWAY', lastGoodStreamId: 9, status: 1 },
  { type: 'WINDOW_UPDATE', streamId: 3, delta: 32768 },
];

test('every frame type survives encode then decode', () => {
  for (const frame of FRAMES) {
    const [back] = new FrameParser().push(encodeFrame(frame));
    assert.deepEqual(back, frame);
  }
});

test('control frames carry version 3 and the control bit, data frames do not', () => {
  const ping = encodeFrame({ type: 'PING', id: 1 });
  assert.deepEqual([...ping.subarray(0, 8)], [0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04]);
  const data = encodeFrame({ type: 'DATA', streamId: 1, flags: FLAG_FIN, data: Buffer.from('ab') });
  assert.deepEqual([...data], [0, 0, 0, 1, 1, 0, 0, 2, 0x61, 0x62]);
});

test('frames split across TCP chunks at every byte boundary come out whole and in order', () => {
  const wire = Buffer.concat(FRAMES.map(encodeFrame));
  for (let cut = 1; cut < wire.length; cut++) {
    const p = new FrameParser();
    const got = [...p.push(wire.subarray(0, cut)), ...p.push(wire.subarray(cut))];
    assert.deepEqual(got, FRAMES, `cut at ${cut}`);
    assert.equal(p.pendingBytes, 0);
  }
  const p = new FrameParser();
  const oneByOne = [...wire].flatMap((b) => p.push(Buffer.from([b])));
  assert.deepEqual(oneByOne, FRAMES);
});

test('a large data frame arriving in many chunks is reassembled', () => {
  const data = Buffer.alloc(3 * 1024 * 1024, 7);
  const wire = encodeFrame({ type: 'DATA', streamId: 1, flags: 0, data });
  const p = new FrameParser();
  const out: SpdyFrame[] = [];
  for (let off = 0; off < wire.length; off += 65536) out.push(...p.push(wire.subarray(off, off + 65536)));
  assert.equal(out.length, 1);
  assert.ok(out[0].type === 'DATA' && out[0].data.equals(data));
});

test('a control frame of another SPDY version is a protocol error; unknown types are ignored', () => {
  const bad = encodeFrame({ type: 'PING', id: 1 });
  bad.writeUInt16BE(0x8002, 0);
  assert.throws(() => new FrameParser().push(bad), SpdyProtocolError);
  const unknown = encodeFrame({ type: 'PING', id: 1 });
  unknown.writeUInt16BE(0x00ff, 2);
  assert.deepEqual(new FrameParser().push(unknown), [{ type: 'UNKNOWN', controlType: 0xff, flags: 0 }]);
  const shortRst = Buffer.from([0x80, 3, 0, 3, 0, 0, 0, 4, 0, 0, 0, 1]);
  assert.throws(() => new FrameParser().push(shortRst), /RST_STREAM frame: payload of 4 bytes/);
});

test('header blocks round trip with lowercase names and NUL-joined values', () => {
  const block = encodeHeaderBlock({ StreamType: 'stdout', port: '80\u000081' });
  assert.deepEqual(decodeHeaderBlock(block), { streamtype: 'stdout', port: '80\u000081' });
  assert.throws(() => decodeHeaderBlock(block.subarray(0, block.length - 1)), /runs past the block/);
});

test('the dictionary is the SPDY/3 one: its Adler-32 is what Go writes as the zlib dict id', () => {
  assert.equal(SPDY3_DICTIONARY.length, 1423);
  // A zlib stream primed with a dictionary carries its Adler-32 at bytes 2..5.
  const z = zlib.deflateSync(Buffer.from('x'), { dictionary: SPDY3_DICTIONARY });
  assert.equal(z.readUInt32BE(2), 0xe3c6a7c2);
});

// Two SYN_STREAMs written by moby/spdystream's framer (Go) on one connection: the second
// header block only inflates with the context the first one left behind.
const GO_SYN_STREAMS = [
  '80030001000000290000000100000000000078f9e3c6a7c26260606004a7b392a2d4c45c6851c29a0a0a6800000000ffff',
  '800300010000001900000003000000000000c22ac5565c92925f5a02000000ffff',
];

test('header blocks from Go spdystream inflate with one stateful context', async () => {
  const d = new HeaderDecompressor();
  try {
    const p = new FrameParser();
    const frames = GO_SYN_STREAMS.flatMap((hex) => p.push(Buffer.from(hex, 'hex')));
    const headers = [];
    for (const f of frames) {
      assert.equal(f.type, 'SYN_STREAM');
      if (f.type === 'SYN_STREAM') headers.push(await d.decompress(f.headerBlock));
    }
    assert.deepEqual(headers, [{ streamtype: 'error' }, { streamtype: 'stdout' }]);
  } finally {
    d.close();
  }
});

test('our compressor and decompressor stay in step over many blocks, and the dictionary shrinks them', async () => {
  const c = new HeaderCompressor();
  const d = new HeaderDecompressor();
  try {
    const sets = Array.from({ length: 20 }, (_, i) => ({ streamtype: i % 2 ? 'data' : 'error', port: String(8000 + i), requestid: String(i) }));
    const blocks = await Promise.all(sets.map((h) => c.compress(h)));
    for (const [i, b] of blocks.entries()) {
      assert.equal(b.subarray(-4).toString('hex'), '0000ffff', 'each block ends in a sync flush');
      assert.deepEqual(await d.decompress(b), sets[i]);
    }
    assert.ok(blocks[19].length < blocks[0].length, 'later blocks reuse the shared window');
  } finally {
    c.close();
    d.close();
  }
});

test('garbage in a header block is a protocol error', async () => {
  const d = new HeaderDecompressor();
  try {
    await assert.rejects(d.decompress(Buffer.from('not zlib at all')), SpdyProtocolError);
  } finally {
    d.close();
  }
});
