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

/** The part of node:zlib's native handle a synchronous inflate uses (what zlib.gunzipSync drives). */
interface ZlibHandle {
  writeSync(flush: number, input: Buffer, inOff: number, inLen: number, out: Buffer, outOff: number, outLen: number): void;
  onerror: (message: string, errno: number, code: string) => void;
  close(): void;
}

/**
 * gunzip on the calling thread, for a layer worker (which is off the daemon's thread,
 * so blocking it costs nobody): node:zlib's async stream hands every 64 KiB of output
 * to libuv's pool and back, ~220 futex calls and an eventfd wake-up per MiB (issue 13,
 * strace of a 200 MiB pull), while the inflate itself is cheap. This drives the same
 * native zlib handle that zlib.gunzipSync does, one GUNZIP_CHUNK_BYTES output buffer at
 * a time with the stream's backpressure kept: while the reader wants no more, the rest
 * of the input waits (in `pending`) until it reads again. Concatenated gzip members,
 * the errors (their Z_* codes and messages) and the end of the stream (input after the
 * last member is ignored, as node's Gunzip does) are node's.
 */
export class SyncGunzip extends Transform {
  private readonly zlib = zlib.createGunzip();
  private readonly handle: ZlibHandle;
  private readonly state: Uint32Array;
  private out = Buffer.allocUnsafe(GUNZIP_CHUNK_BYTES);
  private outOff = 0;
  private error: Error | undefined;
  /**
   * The handle is closed (stream ended or destroyed): node aborts the whole process on
   * a writeSync to a closed zlib handle, so none may follow, even when a reader destroys
   * this stream from inside push().
   */
  private handleClosed = false;
  /** The input being inflated while the reader is full: where it stands and whom to tell when done. */
  private pending: { chunk: Buffer; off: number; flush: number; cb: TransformCallback } | undefined;

  constructor() {
    super();
    const z = this.zlib as unknown as { _handle: ZlibHandle; _writeState: Uint32Array };
    this.handle = z._handle;
    this.state = z._writeState;
    this.handle.onerror = (message, errno, code) => {
      this.error = Object.assign(new Error(message), { errno, code });
    };
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.handleClosed) {
      cb();
      return;
    }
    this.pending = { chunk, off: 0, flush: zlib.constants.Z_NO_FLUSH, cb };
    this.inflate();
  }

  override _flush(cb: TransformCallback): void {
    if (this.handleClosed) {
      cb();
      return;
    }
    this.pending = { chunk: Buffer.alloc(0), off: 0, flush: zlib.constants.Z_FINISH, cb };
    this.inflate();
  }

  override _read(size: number): void {
    if (this.pending) this.inflate();
    else super._read(size);
  }

  override _destroy(e: Error | null, cb: (e?: Error | null) => void): void {
    this.pending = undefined;
    this.close();
    cb(e);
  }

  private close(): void {
    this.handleClosed = true;
    this.zlib.close();
  }

  /** Inflates `pending` until it is all consumed (its callback then runs) or the reader is full. */
  private inflate(): void {
    const p = this.pending!;
    for (;;) {
      if (this.handleClosed) return;
      const outLen = this.out.length - this.outOff;
      this.handle.writeSync(p.flush, p.chunk, p.off, p.chunk.length - p.off, this.out, this.outOff, outLen);
      if (this.error) {
        this.pending = undefined;
        p.cb(this.error);
        return;
      }
      const availOut = this.state[0];
      const availIn = this.state[1];
      p.off = p.chunk.length - availIn;
      const have = outLen - availOut;
      let wantsMore = true;
      if (have > 0) {
        wantsMore = this.push(this.out.subarray(this.outOff, this.outOff + have));
        this.outOff += have;
      }
      if (availOut === 0) {
        // Output buffer full: there may be more of this input's output; a new buffer, as
        // the pushed ones are the reader's now.
        this.out = Buffer.allocUnsafe(GUNZIP_CHUNK_BYTES);
        this.outOff = 0;
        if (!wantsMore) return;
        continue;
      }
      this.pending = undefined;
      if (availIn > 0 || p.flush === zlib.constants.Z_FINISH) {
        // zlib took no more input although it had room to write: the gzip stream has ended.
        this.close();
      }
      p.cb();
      return;
    }
  }
}

export function decompressor(compression: Compression, o: { sync?: boolean } = {}): Transform {
  switch (compression) {
    case 'gzip':
      return o.sync ? new SyncGunzip() : zlib.createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES });
    case 'zstd':
      return new ZstdStream();
    case 'none':
      return new PassThrough();
  }
}

/** `raw` (compressed as `compression`) decompressed; either failing or closing ends both. */
export function decompressedFrom(raw: Readable, compression: Compression, o: { sync?: boolean } = {}): Readable {
  const dec = decompressor(compression, o);
  raw.on('error', (e) => dec.destroy(e));
  // However the unpack stops reading (an error, or destroy() without one), the raw
  // stream goes too, so its producer never waits on a consumer that is gone.
  dec.once('close', () => raw.destroy());
  return raw.pipe(dec);
}
