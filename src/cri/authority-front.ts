// A front for HTTP/2 connections from clients that send a unix socket *path* as the
// `:authority` (the kubelet before 1.30, crictl on older grpc-go). Node's HTTP/2 layer
// (nghttp2) resets such streams with PROTOCOL_ERROR before grpc-js ever sees them.
//
// The opener (src/cri/connection-opener.ts) reads a connection's first header block;
// only when its authority is invalid does the connection go through this front, between
// the socket and grpc-js. The front decodes every header block of the connection
// (mirroring the client's HPACK table) and re-encodes it with literals that never enter
// the dynamic table, with `:authority` set to "localhost". The server→client direction
// is never touched, so its HPACK context stays intact.
import { Duplex } from 'node:stream';
import type net from 'node:net';
import hpack from 'hpack.js';

const PREFACE_LENGTH = 24;
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

interface HeaderField {
  name: string;
  value: string;
}

interface PendingBlock {
  streamId: number;
  flags: number;
  priority: Buffer | undefined;
  fragments: Buffer[];
}

type Decompressor = ReturnType<typeof hpack.decompressor.create>;

function newDecoder(): Decompressor {
  return hpack.decompressor.create({ table: { size: DEFAULT_TABLE_SIZE } });
}

/** A HEADERS frame's block fragment (padding and priority taken off) and its priority bytes. */
function headersPayload(frame: Buffer): { fragment: Buffer; priority: Buffer | undefined } {
  const flags = frame[4];
  let p = frame.subarray(FRAME_HEADER);
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
  return { fragment: p.subarray(0, p.length - pad), priority };
}

function decodeBlock(decoder: Decompressor, block: Buffer): HeaderField[] {
  decoder.write(block);
  decoder.execute();
  const out: HeaderField[] = [];
  for (;;) {
    const h = decoder.read() as HeaderField | null;
    if (h === null) break;
    out.push({ name: String(h.name), value: String(h.value) });
  }
  return out;
}

/** The `:authority` of a connection's first header block (its HEADERS and CONTINUATION frames); "" when it has none. */
export function firstAuthority(frames: Buffer[]): string {
  const fragments = frames.map((f, i) => (i === 0 ? headersPayload(f).fragment : f.subarray(FRAME_HEADER)));
  return decodeBlock(newDecoder(), Buffer.concat(fragments)).find((h) => h.name === ':authority')?.value ?? '';
}

export class AuthorityFront extends Duplex {
  private buf: Buffer = Buffer.alloc(0);
  private prefaceSeen = false;
  private pending: PendingBlock | undefined;
  private readonly decoder = newDecoder();

  /** `initial`: what the opener read of the connection already, from the client preface on. */
  constructor(
    private readonly socket: net.Socket,
    initial: Buffer,
  ) {
    super({ allowHalfOpen: true });
    socket.on('data', (d: Buffer) => this.onClientData(d));
    socket.on('end', () => this.push(null));
    socket.on('error', (e) => this.destroy(e));
    socket.on('close', () => this.destroy());
    this.onClientData(initial);
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
    this.buf = this.buf.length === 0 ? data : Buffer.concat([this.buf, data]);
    try {
      this.drainFrames();
    } catch (e) {
      this.destroy(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private drainFrames(): void {
    if (!this.prefaceSeen) {
      if (this.buf.length < PREFACE_LENGTH) return;
      this.forward(this.buf.subarray(0, PREFACE_LENGTH));
      this.buf = this.buf.subarray(PREFACE_LENGTH);
      this.prefaceSeen = true;
    }
    while (this.buf.length >= FRAME_HEADER) {
      const length = this.buf.readUIntBE(0, 3);
      if (this.buf.length < FRAME_HEADER + length) return;
      const frame = this.buf.subarray(0, FRAME_HEADER + length);
      this.buf = this.buf.subarray(FRAME_HEADER + length);
      this.onFrame(frame);
    }
  }

  private onFrame(frame: Buffer): void {
    const type = frame[3];
    const flags = frame[4];
    const streamId = frame.readUInt32BE(5) & 0x7fffffff;
    if (type === TYPE_HEADERS) {
      const { fragment, priority } = headersPayload(frame);
      this.pending = { streamId, flags, priority, fragments: [fragment] };
    } else if (type === TYPE_CONTINUATION && this.pending) {
      this.pending.fragments.push(frame.subarray(FRAME_HEADER));
      this.pending.flags |= flags & FLAG_END_HEADERS;
    } else {
      this.forward(frame);
      return;
    }
    if (this.pending.flags & FLAG_END_HEADERS) {
      const block = this.pending;
      this.pending = undefined;
      const headers = decodeBlock(this.decoder, Buffer.concat(block.fragments));
      const fixed = headers.map((h) => (h.name === ':authority' && !isValidAuthority(h.value) ? { name: h.name, value: REPLACEMENT_AUTHORITY } : h));
      this.forward(encodeHeaderFrames(block.streamId, block.flags & FLAG_END_STREAM, block.priority, fixed));
    }
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
