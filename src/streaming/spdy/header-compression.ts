// SPDY/3 header compression (§2.6.10.1): one zlib stream per direction for the whole
// session, primed with the SPDY/3 dictionary, each header block ending in a sync flush.
// The contexts are stateful across frames, so blocks must pass through them in the
// order the frames are sent or received; each context runs one block at a time.
import zlib from 'node:zlib';
import { SPDY3_DICTIONARY } from './dictionary.js';
import { decodeHeaderBlock, encodeHeaderBlock, SpdyProtocolError, type SpdyHeaders } from './frames.js';

/** A decompressed header block larger than this is a protocol error (a zlib bomb guard). */
export const MAX_HEADER_BLOCK_BYTES = 1024 * 1024;

type ZlibStream = zlib.Deflate | zlib.Inflate;

/** Serialises write + Z_SYNC_FLUSH on one zlib stream, collecting what each block produced. */
class ZlibContext {
  private chunks: Buffer[] = [];
  private size = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private failure: Error | undefined;
  private current: ((e: Error) => void) | undefined;

  constructor(
    private readonly stream: ZlibStream,
    private readonly what: string,
  ) {
    stream.on('data', (c: Buffer) => {
      this.size += c.length;
      if (this.size <= MAX_HEADER_BLOCK_BYTES) this.chunks.push(c);
    });
    stream.on('error', (e: Error) => {
      this.failure = e;
      this.current?.(e);
    });
  }

  run(input: Buffer): Promise<Buffer> {
    const op = this.chain.then(
      () =>
        new Promise<Buffer>((resolve, reject) => {
          if (this.failure) {
            reject(new SpdyProtocolError(`${this.what}: ${this.failure.message}`));
            return;
          }
          this.chunks = [];
          this.size = 0;
          this.current = (e) => reject(new SpdyProtocolError(`${this.what}: ${e.message}`));
          this.stream.write(input);
          // As ws does for permessage-deflate: output of the flushed block has been
          // emitted as 'data' by the time the flush callback runs.
          this.stream.flush(zlib.constants.Z_SYNC_FLUSH, () => {
            this.current = undefined;
            if (this.failure) return;
            if (this.size > MAX_HEADER_BLOCK_BYTES) {
              reject(new SpdyProtocolError(`${this.what}: block of ${this.size} bytes exceeds ${MAX_HEADER_BLOCK_BYTES}`));
              return;
            }
            resolve(Buffer.concat(this.chunks, this.size));
          });
        }),
    );
    this.chain = op.catch(() => undefined);
    return op;
  }

  close(): void {
    this.stream.destroy();
  }
}

/** Compresses outgoing header blocks (the session's send direction). */
export class HeaderCompressor {
  private readonly ctx = new ZlibContext(zlib.createDeflate({ dictionary: SPDY3_DICTIONARY }), 'compressing spdy headers');

  compress(headers: SpdyHeaders): Promise<Buffer> {
    return this.ctx.run(encodeHeaderBlock(headers));
  }

  close(): void {
    this.ctx.close();
  }
}

/** Inflates incoming header blocks (the session's receive direction). */
export class HeaderDecompressor {
  private readonly ctx = new ZlibContext(zlib.createInflate({ dictionary: SPDY3_DICTIONARY }), 'decompressing spdy headers');

  async decompress(block: Buffer): Promise<SpdyHeaders> {
    // An empty block (allowed in HEADERS/SYN_REPLY of some peers) means no headers and
    // must not touch the stream state.
    if (block.length === 0) return {};
    return decodeHeaderBlock(await this.ctx.run(block));
  }

  close(): void {
    this.ctx.close();
  }
}
