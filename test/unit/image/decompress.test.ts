// SyncGunzip (src/image/decompress.ts), the layer worker's gunzip on its own thread:
// the same bytes and the same errors as node's async Gunzip stream, however the input
// is cut, with the reader's backpressure kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { Readable, Writable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setImmediate as tick } from 'node:timers/promises';
import zlib from 'node:zlib';
import { GUNZIP_CHUNK_BYTES, SyncGunzip, decompressor } from '../../../src/image/decompress.js';

/** `data` in pieces of the given sizes (cycling), as a source stream gives them. */
function pieces(data: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0, i = 0; off < data.length; i++) {
    const n = sizes[i % sizes.length];
    out.push(data.subarray(off, off + n));
    off += n;
  }
  return out;
}

/** What a gunzip stream makes of `chunks`: the output, or the error's code and message. */
async function run(dec: Transform, chunks: Buffer[]): Promise<{ out?: Buffer; code?: string; message?: string }> {
  const got: Buffer[] = [];
  try {
    await pipeline(
      Readable.from(chunks),
      dec,
      new Writable({
        write(c: Buffer, _e, cb) {
          got.push(c);
          cb();
        },
      }),
    );
    return { out: Buffer.concat(got) };
  } catch (e) {
    const err = e as { code?: string; message?: string };
    return { code: err.code, message: err.message };
  }
}

async function sameAsNode(input: Buffer, sizes: number[]): Promise<{ out?: Buffer; code?: string; message?: string }> {
  const ours = await run(new SyncGunzip(), pieces(input, sizes));
  const node = await run(zlib.createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES }), pieces(input, sizes));
  assert.deepEqual(ours, node);
  return ours;
}

const random = crypto.randomBytes(300_000);
const text = Buffer.from('layer data, quite compressible. '.repeat(40_000));
const gz = (b: Buffer): Buffer => zlib.gzipSync(b);

test('SyncGunzip gives node Gunzip bytes for any input cut: random, compressible, empty, concatenated members', async () => {
  const small = gz(random.subarray(0, 5000));
  assert.deepEqual((await sameAsNode(small, [1])).out, random.subarray(0, 5000));
  for (const sizes of [[7, 13], [1000], [65_536], [1 << 20]]) {
    assert.deepEqual((await sameAsNode(gz(random), sizes)).out, random);
    assert.deepEqual((await sameAsNode(gz(text), sizes)).out, text);
  }
  assert.deepEqual((await sameAsNode(gz(Buffer.alloc(0)), [10])).out, Buffer.alloc(0));
  const two = Buffer.concat([gz(text), gz(random)]);
  assert.deepEqual((await sameAsNode(two, [4096])).out, Buffer.concat([text, random]));
});

test('SyncGunzip ignores what follows the last gzip member, as node does', async () => {
  const trailing = Buffer.concat([gz(text), Buffer.alloc(1000), Buffer.from('not gzip')]);
  assert.deepEqual((await sameAsNode(trailing, [3000])).out, text);
});

test('SyncGunzip fails corrupt and truncated data with the Z_* code and message node gives', async () => {
  const corrupt = gz(text);
  corrupt.fill(0xa5, 20, 60);
  const bad = await sameAsNode(corrupt, [4096]);
  assert.match(String(bad.code), /^Z_/);
  const notGzip = await sameAsNode(Buffer.from('plain text, no gzip header at all'), [5]);
  assert.match(String(notGzip.code), /^Z_/);
  const whole = gz(random);
  const cut = await sameAsNode(whole.subarray(0, whole.length - 100), [8192]);
  assert.equal(cut.code, 'Z_BUF_ERROR');
  assert.match(String(cut.message), /unexpected end of file/);
});

test('SyncGunzip keeps backpressure: a reader that stops holds the output to a few chunks', async () => {
  // 64 MiB of zeros in ~64 KiB of gzip: one input chunk that inflates a thousandfold.
  const bomb = gz(Buffer.alloc(64 << 20));
  const dec = decompressor('gzip', { sync: true });
  dec.write(bomb);
  dec.end();
  await tick();
  await tick();
  assert.ok(dec.readableLength <= 2 * Math.max(dec.readableHighWaterMark, GUNZIP_CHUNK_BYTES), `buffered ${dec.readableLength} bytes`);
  // Reading on gets all of it.
  let n = 0;
  await pipeline(
    dec,
    new Writable({
      write(c: Buffer, _e, cb) {
        n += c.length;
        cb();
      },
    }),
  );
  assert.equal(n, 64 << 20);
});

test('SyncGunzip destroyed mid-stream stops and frees its handle', async () => {
  const dec = new SyncGunzip();
  dec.write(gz(Buffer.alloc(8 << 20)));
  await tick();
  dec.destroy();
  await new Promise((resolve) => dec.once('close', resolve));
  assert.equal(dec.destroyed, true);
});

test('SyncGunzip destroyed by its reader from inside a push writes no more (node aborts on a write to a closed zlib handle)', async () => {
  const dec = new SyncGunzip();
  let chunks = 0;
  dec.on('data', () => {
    if (++chunks === 3) dec.destroy(new Error('reader gave up'));
  });
  const failed = new Promise<Error>((resolve) => dec.once('error', resolve));
  // One input chunk that inflates to 16 MiB: the loop is mid-inflate when the reader destroys it.
  dec.write(gz(Buffer.alloc(16 << 20)));
  assert.equal((await failed).message, 'reader gave up');
  assert.equal(chunks, 3);
  // Writes and ends after that are refused by the stream, never reach the handle.
  dec.write(gz(text), () => undefined);
  await tick();
  assert.equal(dec.destroyed, true);
});
