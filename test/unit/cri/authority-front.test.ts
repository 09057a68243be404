import assert from 'node:assert/strict';
import { test } from 'node:test';
import hpack from 'hpack.js';
import { encodeHeaderFrames, isValidAuthority } from '../../../src/cri/authority-front.js';

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
