// Layer decompression as streams: gzip through node:zlib, zstd through fzstd's
// streaming decoder (Node 20 has no zstd of its own), uncompressed as is.
// gunzip runs on libuv's threadpool one output buffer at a time; each round trip costs
// ~50 µs of the event loop here (measured: zlib's default 16 KiB chunks spent more of
// the daemon's CPU on scheduling than on inflating), so its chunks are larger than
// zlib's; not so large that they outlive a young-generation GC (batched-file-writer.ts).
import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';
import { Decompress as ZstdDecompress } from 'fzstd';
import { InvalidArgumentError, errorMessage } from '../errors.js';
import type { Compression } from './manifest.js';

class ZstdStream extends Transform {
  private readonly dec: ZstdDecompress;

  constructor() {
    super();
    this.dec = new ZstdDecompress((chunk) => {
      // fzstd reuses no buffers it hands out, but copy defensively: it is cheap
      // next to decompression and keeps the stream's chunks independent.
      this.push(Buffer.from(chunk));
    });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.dec.push(chunk);
      cb();
    } catch (e) {
      cb(new InvalidArgumentError(`decompressing zstd: ${errorMessage(e)}`));
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.dec.push(new Uint8Array(0), true);
      cb();
    } catch (e) {
      cb(new InvalidArgumentError(`decompressing zstd: ${errorMessage(e)}`));
    }
  }
}

/** Output chunk of gunzip: one threadpool round trip per this many bytes. */
export const GUNZIP_CHUNK_BYTES = 64 * 1024;

export function decompressor(compression: Compression): Transform {
  switch (compression) {
    case 'gzip':
      return zlib.createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES });
    case 'zstd':
      return new ZstdStream();
    case 'none':
      return new PassThrough();
  }
}

/** `raw` (compressed as `compression`) decompressed; either failing or closing ends both. */
export function decompressedFrom(raw: Readable, compression: Compression): Readable {
  const dec = decompressor(compression);
  raw.on('error', (e) => dec.destroy(e));
  // However the unpack stops reading (an error, or destroy() without one), the raw
  // stream goes too, so its producer never waits on a consumer that is gone.
  dec.once('close', () => raw.destroy());
  return raw.pipe(dec);
}
