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

/**
 * Whether the `:authority` of a connection's first header block (its HEADERS and
 * CONTINUATION frames; "" when it has none) is one nghttp2 accepts: what the
 * connection opener asks of every new connection. Read straight from the block where it
 * can be (pseudo-header fields come first, and grpc-go's are static-table references and
 * literals with a static name); anything else is decoded in full with hpack.js.
 */
export function firstAuthorityIsValid(frames: Buffer[]): boolean {
  const block = firstBlock(frames);
  const value = authorityString(block);
  if (value === undefined) return decodedAuthorityIsValid(block);
  if (value === EMPTY_STRING) return true;
  const key = value.toString('latin1');
  let valid = verdicts.get(key);
  if (valid === undefined) {
    // The value alone, as a literal field with the static name :authority (index 1).
    valid = decodedAuthorityIsValid(Buffer.concat([LITERAL_AUTHORITY, value]));
    if (verdicts.size >= MAX_VERDICTS) verdicts.clear();
    verdicts.set(key, valid);
  }
  return valid;
}

/**
 * A block hpack.js cannot decode is no HPACK at all: it goes to nghttp2 like any other,
 * which ends the connection with COMPRESSION_ERROR (RFC 9113 §4.3). The error thrown
 * here would otherwise escape the socket's 'data' listener and end the daemon.
 */
function decodedAuthorityIsValid(block: Buffer): boolean {
  try {
    return isValidAuthority(authorityOf(block));
  } catch {
    return true;
  }
}

function firstBlock(frames: Buffer[]): Buffer {
  const fragments = frames.map((f, i) => (i === 0 ? headersPayload(f).fragment : f.subarray(FRAME_HEADER)));
  return fragments.length === 1 ? fragments[0] : Buffer.concat(fragments);
}

function authorityOf(block: Buffer): string {
  return decodeBlock(newDecoder(), block).find((h) => h.name === ':authority')?.value ?? '';
}

/**
 * Verdicts per encoded :authority string (its Huffman flag, length and bytes decode to one
 * value): a node's clients send one or two authorities, and decoding one with hpack.js
 * runs in the interpreter (the daemon's flags) for every connection otherwise.
 */
const verdicts = new Map<string, boolean>();
const MAX_VERDICTS = 64;
/** A literal field without indexing whose name is static entry 1, :authority (RFC 7541 §6.2.2). */
const LITERAL_AUTHORITY = Buffer.from([0x01]);
/** The string representation of "": no Huffman, length 0. */
const EMPTY_STRING = Buffer.from([0x00]);
/** Static table entries 1-14 are the pseudo-header fields; 1 is :authority (RFC 7541 Appendix A). */
const STATIC_AUTHORITY = 1;
const LAST_STATIC_PSEUDO = 14;

/** An HPACK integer with an N-bit prefix at `at` (RFC 7541 §5.1): its value and the offset after it; undefined when cut short or too big. */
function readInteger(b: Buffer, at: number, prefixBits: number): [number, number] | undefined {
  if (at >= b.length) return undefined;
  const max = (1 << prefixBits) - 1;
  let value = b[at] & max;
  at++;
  if (value < max) return [value, at];
  for (let shift = 0; shift <= 21; shift += 7) {
    if (at >= b.length) return undefined;
    const byte = b[at++];
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return [value, at];
  }
  return undefined;
}

/**
 * The encoded string (flag, length, bytes) of the block's first :authority field, when
 * every field before it is a pseudo-header with a static name and nothing touches the
 * dynamic table's size; EMPTY_STRING for the indexed static entry (an empty value);
 * undefined when the block must be decoded in full to know.
 */
function authorityString(b: Buffer): Buffer | undefined {
  let at = 0;
  while (at < b.length) {
    const first = b[at];
    let prefixBits: number;
    if (first & 0x80) {
      // Indexed field: a static pseudo-header, or something only a full decode tells.
      const r = readInteger(b, at, 7);
      if (r === undefined || r[0] < STATIC_AUTHORITY || r[0] > LAST_STATIC_PSEUDO) return undefined;
      if (r[0] === STATIC_AUTHORITY) return EMPTY_STRING;
      at = r[1];
      continue;
    }
    if ((first & 0xc0) === 0x40)
      prefixBits = 6; // literal with incremental indexing
    else if ((first & 0xe0) === 0x00)
      prefixBits = 4; // literal without indexing, never indexed
    else return undefined; // a dynamic table size update
    const name = readInteger(b, at, prefixBits);
    if (name === undefined || name[0] < STATIC_AUTHORITY || name[0] > LAST_STATIC_PSEUDO) return undefined;
    const length = readInteger(b, name[1], 7);
    if (length === undefined || length[1] + length[0] > b.length) return undefined;
    if (name[0] === STATIC_AUTHORITY) return b.subarray(name[1], length[1] + length[0]);
    at = length[1] + length[0];
  }
  return undefined;
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
