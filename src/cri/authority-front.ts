// A front for HTTP/2 connections from clients that send a unix socket *path* as the
// `:authority` (the kubelet before 1.30, crictl on older grpc-go). Node's HTTP/2 layer
// (nghttp2) resets such streams with PROTOCOL_ERROR before grpc-js ever sees them.
//
// The front sits between the accepted socket and grpc-js. It reads the client's frames
// and decodes the first header block. If its authority is valid the connection is
// passed through untouched from then on. Otherwise every header block of the
// connection is decoded (mirroring the client's HPACK table) and re-encoded with
// literals that never enter the dynamic table, with `:authority` set to "localhost".
// The server→client direction is never touched, so its HPACK context stays intact.
import { Duplex } from 'node:stream';
import type net from 'node:net';
import hpack from 'hpack.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
const FRAME_HEADER = 9;
const TYPE_HEADERS = 0x1;
const TYPE_CONTINUATION = 0x9;
const FLAG_END_STREAM = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;
/** Every HTTP/2 peer accepts frames of this size. */
const MAX_FRAME = 16384;
const DEFAULT_TABLE_SIZE = 4096;
export const REPLACEMENT_AUTHORITY = 'localhost';

/** What nghttp2 accepts in :authority (RFC 3986 host[:port] characters). */
const VALID_AUTHORITY = /^[A-Za-z0-9\-._~!$&'()*+,;=:%[\]@]*$/;

export function isValidAuthority(value: string): boolean {
  return VALID_AUTHORITY.test(value);
}

type Mode = 'inspect' | 'passthrough' | 'rewrite';

interface HeaderField {
  name: string;
  value: string;
}

interface PendingBlock {
  streamId: number;
  flags: number;
  priority: Buffer | undefined;
  fragments: Buffer[];
  raw: Buffer[];
}

export class AuthorityFront extends Duplex {
  private mode: Mode = 'inspect';
  private buf: Buffer = Buffer.alloc(0);
  private prefaceSeen = false;
  private pending: PendingBlock | undefined;
  private readonly decoder = hpack.decompressor.create({ table: { size: DEFAULT_TABLE_SIZE } });
  /** Set when the front rewrote the connection (for logs and tests). */
  rewritten = false;

  constructor(private readonly socket: net.Socket) {
    super({ allowHalfOpen: true });
    socket.on('data', (d: Buffer) => this.onClientData(d));
    socket.on('end', () => this.push(null));
    socket.on('error', (e) => this.destroy(e));
    socket.on('close', () => this.destroy());
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.socket.write(chunk, cb);
  }

  /**
   * What the HTTP/2 session flushes at once (an answer's HEADERS, DATA and trailers come
   * as several buffers) goes out in one write, not one system call per buffer.
   */
  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (e?: Error | null) => void): void {
    this.socket.write(chunks.length === 1 ? chunks[0].chunk : Buffer.concat(chunks.map((c) => c.chunk)), cb);
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.socket.end(cb);
  }

  override _destroy(e: Error | null, cb: (e?: Error | null) => void): void {
    this.socket.destroy();
    cb(e);
  }

  private forward(data: Buffer): void {
    if (!this.push(data)) this.socket.pause();
  }

  private onClientData(data: Buffer): void {
    if (this.mode === 'passthrough') {
      this.forward(data);
      return;
    }
    this.buf = this.buf.length === 0 ? data : Buffer.concat([this.buf, data]);
    try {
      this.drainFrames();
    } catch (e) {
      this.destroy(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private drainFrames(): void {
    if (!this.prefaceSeen) {
      if (this.buf.length < PREFACE.length) return;
      this.forward(this.buf.subarray(0, PREFACE.length));
      this.buf = this.buf.subarray(PREFACE.length);
      this.prefaceSeen = true;
    }
    while (this.mode !== 'passthrough' && this.buf.length >= FRAME_HEADER) {
      const length = this.buf.readUIntBE(0, 3);
      if (this.buf.length < FRAME_HEADER + length) return;
      const frame = this.buf.subarray(0, FRAME_HEADER + length);
      this.buf = this.buf.subarray(FRAME_HEADER + length);
      this.onFrame(frame);
    }
    if (this.mode === 'passthrough' && this.buf.length > 0) {
      this.forward(this.buf);
      this.buf = Buffer.alloc(0);
    }
  }

  private onFrame(frame: Buffer): void {
    const type = frame[3];
    const flags = frame[4];
    const streamId = frame.readUInt32BE(5) & 0x7fffffff;
    const payload = frame.subarray(FRAME_HEADER);
    if (type === TYPE_HEADERS) {
      let p = payload;
      let pad = 0;
      if (flags & FLAG_PADDED) {
        pad = p[0]!;
        p = p.subarray(1);
      }
      let priority: Buffer | undefined;
      if (flags & FLAG_PRIORITY) {
        priority = Buffer.from(p.subarray(0, 5));
        p = p.subarray(5);
      }
      this.pending = { streamId, flags, priority, fragments: [p.subarray(0, p.length - pad)], raw: [frame] };
    } else if (type === TYPE_CONTINUATION && this.pending) {
      this.pending.fragments.push(payload);
      this.pending.raw.push(frame);
      this.pending.flags |= flags & FLAG_END_HEADERS;
    } else {
      this.forward(frame);
      return;
    }
    if (this.pending.flags & FLAG_END_HEADERS) {
      const block = this.pending;
      this.pending = undefined;
      this.onHeaderBlock(block);
    }
  }

  private onHeaderBlock(block: PendingBlock): void {
    const headers = this.decode(Buffer.concat(block.fragments));
    if (this.mode === 'inspect') {
      const authority = headers.find((h) => h.name === ':authority')?.value ?? '';
      if (isValidAuthority(authority)) {
        this.mode = 'passthrough';
        for (const f of block.raw) this.forward(f);
        return;
      }
      this.mode = 'rewrite';
      this.rewritten = true;
    }
    const fixed = headers.map((h) => (h.name === ':authority' && !isValidAuthority(h.value) ? { name: h.name, value: REPLACEMENT_AUTHORITY } : h));
    this.forward(encodeHeaderFrames(block.streamId, block.flags & FLAG_END_STREAM, block.priority, fixed));
  }

  private decode(block: Buffer): HeaderField[] {
    this.decoder.write(block);
    this.decoder.execute();
    const out: HeaderField[] = [];
    for (;;) {
      const h = this.decoder.read() as HeaderField | null;
      if (h === null) break;
      out.push({ name: String(h.name), value: String(h.value) });
    }
    return out;
  }
}

/** HEADERS (+ CONTINUATION) frames whose block uses no dynamic table entries. */
export function encodeHeaderFrames(streamId: number, endStream: number, priority: Buffer | undefined, headers: HeaderField[]): Buffer {
  const comp = hpack.compressor.create({ table: { size: DEFAULT_TABLE_SIZE } });
  comp.write(headers.map((h) => ({ name: h.name, value: h.value, neverIndex: true, huffman: true })));
  const parts: Buffer[] = [];
  for (;;) {
    const chunk = comp.read() as Buffer | null;
    if (chunk === null) break;
    parts.push(chunk);
  }
  let block = Buffer.concat(parts);
  const frames: Buffer[] = [];
  let first = true;
  do {
    const room = MAX_FRAME - (first && priority ? 5 : 0);
    const piece = block.subarray(0, room);
    block = block.subarray(piece.length);
    const last = block.length === 0;
    const type = first ? TYPE_HEADERS : TYPE_CONTINUATION;
    let flags = last ? FLAG_END_HEADERS : 0;
    if (first) flags |= endStream | (priority ? FLAG_PRIORITY : 0);
    const payload = first && priority ? Buffer.concat([priority, piece]) : piece;
    const header = Buffer.alloc(FRAME_HEADER);
    header.writeUIntBE(payload.length, 0, 3);
    header[3] = type;
    header[4] = flags;
    header.writeUInt32BE(streamId, 5);
    frames.push(header, payload);
    first = false;
  } while (block.length > 0);
  return Buffer.concat(frames);
}
