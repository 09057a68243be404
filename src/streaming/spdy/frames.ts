// SPDY/3.1 frames (draft-mbelshe-httpbis-spdy-00 §2.2, §2.6; SPDY/3.1 adds only the
// session window, which client-go's spdystream never uses). This module is pure: it
// turns frames into bytes and bytes into frames. Header blocks travel here still
// compressed; header-compression.ts owns the two zlib contexts.
//
// Control frame:  |1| version(15) | type(16) | flags(8) | length(24) | data
// Data frame:     |0| stream id(31)           | flags(8) | length(24) | data

export const SPDY_VERSION = 3;
export const FRAME_HEADER_BYTES = 8;
/** The 24-bit length field's limit. */
export const MAX_FRAME_PAYLOAD_BYTES = 0xffffff;

export const FRAME_TYPE = {
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const;

export const FLAG_FIN = 0x01;
export const FLAG_UNIDIRECTIONAL = 0x02;

export const RST_STATUS = {
  PROTOCOL_ERROR: 1,
  INVALID_STREAM: 2,
  REFUSED_STREAM: 3,
  UNSUPPORTED_VERSION: 4,
  CANCEL: 5,
  INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7,
  STREAM_IN_USE: 8,
  STREAM_ALREADY_CLOSED: 9,
  FRAME_TOO_LARGE: 11,
} as const;

export const GOAWAY_STATUS = { OK: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2 } as const;

/** Header names are lowercase on the wire (§2.6.10); several values are NUL-joined. */
export type SpdyHeaders = Record<string, string>;

export interface SettingEntry {
  flags: number;
  id: number;
  value: number;
}

/** A frame as it is on the wire; header blocks are the compressed bytes. */
export type SpdyFrame =
  | { type: 'DATA'; streamId: number; flags: number; data: Buffer }
  | {
      type: 'SYN_STREAM';
      streamId: number;
      associatedStreamId: number;
      priority: number;
      slot: number;
      flags: number;
      headerBlock: Buffer;
    }
  | { type: 'SYN_REPLY'; streamId: number; flags: number; headerBlock: Buffer }
  | { type: 'HEADERS'; streamId: number; flags: number; headerBlock: Buffer }
  | { type: 'RST_STREAM'; streamId: number; status: number }
  | { type: 'SETTINGS'; flags: number; entries: SettingEntry[] }
  | { type: 'PING'; id: number }
  | { type: 'GOAWAY'; lastGoodStreamId: number; status: number }
  | { type: 'WINDOW_UPDATE'; streamId: number; delta: number }
  | { type: 'UNKNOWN'; controlType: number; flags: number };

/** A frame the peer got wrong: the session answers with GOAWAY PROTOCOL_ERROR. */
export class SpdyProtocolError extends Error {
  override readonly name = 'SpdyProtocolError';
}

const STREAM_ID_MASK = 0x7fffffff;

function controlFrame(type: number, flags: number, payload: Buffer): Buffer {
  if (payload.length > MAX_FRAME_PAYLOAD_BYTES) {
    throw new RangeError(`encoding spdy control frame ${type}: payload of ${payload.length} bytes exceeds 24 bits`);
  }
  const head = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  head.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  head.writeUInt16BE(type, 2);
  head.writeUInt32BE(((flags & 0xff) * 0x1000000 + payload.length) >>> 0, 4);
  return Buffer.concat([head, payload]);
}

/** Encodes one frame; header blocks must already be compressed. */
export function encodeFrame(frame: SpdyFrame): Buffer {
  switch (frame.type) {
    case 'DATA': {
      if (frame.data.length > MAX_FRAME_PAYLOAD_BYTES) {
        throw new RangeError(`encoding spdy data frame: payload of ${frame.data.length} bytes exceeds 24 bits`);
      }
      const head = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
      head.writeUInt32BE(frame.streamId & STREAM_ID_MASK, 0);
      head.writeUInt32BE(((frame.flags & 0xff) * 0x1000000 + frame.data.length) >>> 0, 4);
      return Buffer.concat([head, frame.data]);
    }
    case 'SYN_STREAM': {
      const p = Buffer.allocUnsafe(10);
      p.writeUInt32BE(frame.streamId & STREAM_ID_MASK, 0);
      p.writeUInt32BE(frame.associatedStreamId & STREAM_ID_MASK, 4);
      p[8] = (frame.priority & 0x7) << 5;
      p[9] = frame.slot & 0xff;
      return controlFrame(FRAME_TYPE.SYN_STREAM, frame.flags, Buffer.concat([p, frame.headerBlock]));
    }
    case 'SYN_REPLY':
    case 'HEADERS': {
      const p = Buffer.allocUnsafe(4);
      p.writeUInt32BE(frame.streamId & STREAM_ID_MASK, 0);
      const type = frame.type === 'SYN_REPLY' ? FRAME_TYPE.SYN_REPLY : FRAME_TYPE.HEADERS;
      return controlFrame(type, frame.flags, Buffer.concat([p, frame.headerBlock]));
    }
    case 'RST_STREAM': {
      const p = Buffer.allocUnsafe(8);
      p.writeUInt32BE(frame.streamId & STREAM_ID_MASK, 0);
      p.writeUInt32BE(frame.status >>> 0, 4);
      return controlFrame(FRAME_TYPE.RST_STREAM, 0, p);
    }
    case 'SETTINGS': {
      const p = Buffer.allocUnsafe(4 + 8 * frame.entries.length);
      p.writeUInt32BE(frame.entries.length, 0);
      frame.entries.forEach((e, i) => {
        p.writeUInt32BE(((e.flags & 0xff) * 0x1000000 + (e.id & 0xffffff)) >>> 0, 4 + 8 * i);
        p.writeUInt32BE(e.value >>> 0, 8 + 8 * i);
      });
      return controlFrame(FRAME_TYPE.SETTINGS, frame.flags, p);
    }
    case 'PING': {
      const p = Buffer.allocUnsafe(4);
      p.writeUInt32BE(frame.id >>> 0, 0);
      return controlFrame(FRAME_TYPE.PING, 0, p);
    }
    case 'GOAWAY': {
      const p = Buffer.allocUnsafe(8);
      p.writeUInt32BE(frame.lastGoodStreamId & STREAM_ID_MASK, 0);
      p.writeUInt32BE(frame.status >>> 0, 4);
      return controlFrame(FRAME_TYPE.GOAWAY, 0, p);
    }
    case 'WINDOW_UPDATE': {
      const p = Buffer.allocUnsafe(8);
      p.writeUInt32BE(frame.streamId & STREAM_ID_MASK, 0);
      p.writeUInt32BE(frame.delta & STREAM_ID_MASK, 4);
      return controlFrame(FRAME_TYPE.WINDOW_UPDATE, 0, p);
    }
    case 'UNKNOWN':
      throw new RangeError(`encoding spdy control frame of unknown type ${frame.controlType}`);
  }
}

function need(type: string, payload: Buffer, min: number, exact = false): void {
  if (payload.length < min || (exact && payload.length !== min)) {
    throw new SpdyProtocolError(`decoding spdy ${type} frame: payload of ${payload.length} bytes, want ${exact ? '' : 'at least '}${min}`);
  }
}

/** Decodes one complete frame from its 8-byte head and its payload. */
export function decodeFrame(head: Buffer, payload: Buffer): SpdyFrame {
  const word0 = head.readUInt32BE(0);
  const flags = head[4];
  if ((word0 & 0x80000000) === 0) {
    return { type: 'DATA', streamId: word0 & STREAM_ID_MASK, flags, data: payload };
  }
  const version = (word0 >>> 16) & 0x7fff;
  const type = word0 & 0xffff;
  if (version !== SPDY_VERSION) {
    throw new SpdyProtocolError(`decoding spdy control frame: unsupported version ${version}`);
  }
  switch (type) {
    case FRAME_TYPE.SYN_STREAM:
      need('SYN_STREAM', payload, 10);
      return {
        type: 'SYN_STREAM',
        streamId: payload.readUInt32BE(0) & STREAM_ID_MASK,
        associatedStreamId: payload.readUInt32BE(4) & STREAM_ID_MASK,
        priority: payload[8] >>> 5,
        slot: payload[9],
        flags,
        headerBlock: payload.subarray(10),
      };
    case FRAME_TYPE.SYN_REPLY:
    case FRAME_TYPE.HEADERS:
      need(type === FRAME_TYPE.SYN_REPLY ? 'SYN_REPLY' : 'HEADERS', payload, 4);
      return {
        type: type === FRAME_TYPE.SYN_REPLY ? 'SYN_REPLY' : 'HEADERS',
        streamId: payload.readUInt32BE(0) & STREAM_ID_MASK,
        flags,
        headerBlock: payload.subarray(4),
      };
    case FRAME_TYPE.RST_STREAM:
      need('RST_STREAM', payload, 8, true);
      return { type: 'RST_STREAM', streamId: payload.readUInt32BE(0) & STREAM_ID_MASK, status: payload.readUInt32BE(4) };
    case FRAME_TYPE.SETTINGS: {
      need('SETTINGS', payload, 4);
      const count = payload.readUInt32BE(0);
      need('SETTINGS', payload, 4 + 8 * count, true);
      const entries: SettingEntry[] = [];
      for (let i = 0; i < count; i++) {
        const off = 4 + 8 * i;
        entries.push({ flags: payload[off], id: payload.readUIntBE(off + 1, 3), value: payload.readUInt32BE(off + 4) });
      }
      return { type: 'SETTINGS', flags, entries };
    }
    case FRAME_TYPE.PING:
      need('PING', payload, 4, true);
      return { type: 'PING', id: payload.readUInt32BE(0) };
    case FRAME_TYPE.GOAWAY:
      // SPDY/3 added the status word; tolerate its absence as SPDY/2 peers sent it.
      need('GOAWAY', payload, 4);
      return {
        type: 'GOAWAY',
        lastGoodStreamId: payload.readUInt32BE(0) & STREAM_ID_MASK,
        status: payload.length >= 8 ? payload.readUInt32BE(4) : GOAWAY_STATUS.OK,
      };
    case FRAME_TYPE.WINDOW_UPDATE:
      need('WINDOW_UPDATE', payload, 8, true);
      return {
        type: 'WINDOW_UPDATE',
        streamId: payload.readUInt32BE(0) & STREAM_ID_MASK,
        delta: payload.readUInt32BE(4) & STREAM_ID_MASK,
      };
    default:
      // §2.2.1: unknown control frame types are ignored.
      return { type: 'UNKNOWN', controlType: type, flags };
  }
}

/**
 * Splits a byte stream into frames, however TCP cut it. Chunks are kept in a list
 * so a 16 MiB frame arriving in 64 KiB pieces is copied once, not once per piece.
 */
export class FrameParser {
  private chunks: Buffer[] = [];
  private buffered = 0;

  /** Feeds bytes; returns every frame completed by them, in order. */
  push(chunk: Buffer): SpdyFrame[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const frames: SpdyFrame[] = [];
    for (;;) {
      if (this.buffered < FRAME_HEADER_BYTES) return frames;
      const head = this.peek(FRAME_HEADER_BYTES);
      const length = head.readUInt32BE(4) & 0xffffff;
      if (this.buffered < FRAME_HEADER_BYTES + length) return frames;
      this.take(FRAME_HEADER_BYTES);
      frames.push(decodeFrame(head, this.take(length)));
    }
  }

  /** Bytes held back waiting for the rest of a frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length >= n) return this.chunks[0].subarray(0, n);
    return Buffer.concat(this.chunks, this.buffered).subarray(0, n);
  }

  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0];
    if (n === 0) return Buffer.alloc(0);
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    if (first.length === n) {
      this.chunks.shift();
      return first;
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0];
      const len = Math.min(c.length, n - off);
      c.copy(out, off, 0, len);
      off += len;
      if (len === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(len);
    }
    return out;
  }
}

/** The uncompressed header block (§2.6.10): count, then length-prefixed names and values. */
export function encodeHeaderBlock(headers: SpdyHeaders): Buffer {
  const entries = Object.entries(headers);
  const parts: Buffer[] = [];
  const count = Buffer.allocUnsafe(4);
  count.writeUInt32BE(entries.length, 0);
  parts.push(count);
  for (const [name, value] of entries) {
    for (const s of [name.toLowerCase(), value]) {
      const b = Buffer.from(s, 'utf8');
      const len = Buffer.allocUnsafe(4);
      len.writeUInt32BE(b.length, 0);
      parts.push(len, b);
    }
  }
  return Buffer.concat(parts);
}

export function decodeHeaderBlock(block: Buffer): SpdyHeaders {
  const fail = (what: string): never => {
    throw new SpdyProtocolError(`decoding spdy header block: ${what}`);
  };
  if (block.length < 4) fail(`block of ${block.length} bytes has no pair count`);
  const count = block.readUInt32BE(0);
  let off = 4;
  const readString = (): string => {
    if (off + 4 > block.length) fail('truncated length');
    const len = block.readUInt32BE(off);
    off += 4;
    if (off + len > block.length) fail(`string of ${len} bytes runs past the block`);
    const s = block.toString('utf8', off, off + len);
    off += len;
    return s;
  };
  const headers: SpdyHeaders = {};
  for (let i = 0; i < count; i++) {
    const name = readString().toLowerCase();
    const value = readString();
    if (name === '') fail('empty header name');
    headers[name] = name in headers ? `${headers[name]}\0${value}` : value;
  }
  return headers;
}
